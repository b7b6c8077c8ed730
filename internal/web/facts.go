package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/facts"
	"github.com/omserver/omserver-go/internal/store"
)

// Host facts (module 1008): each server's latest facts, filterable
// ("disk / above 90%"), paged by address.

// factsView is one server's facts as shown.
type factsView struct {
	store.ServerFacts
	Facts facts.Facts `json:"facts"`
}

func factsFilter(r *http.Request) (store.FactsFilter, error) {
	q := r.URL.Query()
	f := store.FactsFilter{Mount: strings.TrimSpace(q.Get("mount")), After: q.Get("after")}
	num := func(name string) (float64, error) {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 || n > 1e6 {
			return 0, invalidf("%s %q is not a number of 0 or more", name, clipRunes(v, 40))
		}
		return n, nil
	}
	var err error
	if f.DiskAbove, err = num("disk_above"); err != nil {
		return f, err
	}
	if f.MemAbove, err = num("mem_above"); err != nil {
		return f, err
	}
	if f.LoadAbove, err = num("load_above"); err != nil {
		return f, err
	}
	if len(f.Mount) > 255 || len(f.After) > store.MaxIPLen {
		return f, invalidf("mount or after too long")
	}
	return f, nil
}

const factsPerPage = 100

func (s *Server) factsPage(r *http.Request) ([]factsView, string, store.FactsFilter, error) {
	f, err := factsFilter(r)
	if err != nil {
		return nil, "", f, err
	}
	f.Limit = factsPerPage
	rows, err := s.st.ListFacts(r.Context(), f)
	if err != nil {
		return nil, "", f, err
	}
	out := make([]factsView, len(rows))
	for i, row := range rows {
		out[i].ServerFacts = row
		_ = json.Unmarshal([]byte(row.Facts), &out[i].Facts)
	}
	next := ""
	if len(rows) == factsPerPage {
		next = rows[len(rows)-1].IP
	}
	return out, next, f, nil
}

func (s *Server) apiFacts(w http.ResponseWriter, r *http.Request) error {
	list, next, _, err := s.factsPage(r)
	if err != nil {
		return err
	}
	body := map[string]any{"servers": list, "next_after": nil}
	if next != "" {
		body["next_after"] = next
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) apiServerFacts(w http.ResponseWriter, r *http.Request) error {
	ip := urlParam(r, "ip")
	row, disks, err := s.st.GetFacts(r.Context(), ip)
	if err != nil {
		return err
	}
	v := factsView{ServerFacts: row}
	_ = json.Unmarshal([]byte(row.Facts), &v.Facts)
	writeJSON(w, http.StatusOK, map[string]any{"server": v, "disks": disks})
	return nil
}

func (s *Server) pageFacts(w http.ResponseWriter, r *http.Request) error {
	list, next, f, err := s.factsPage(r)
	if err != nil {
		return err
	}
	nextURL := ""
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		nextURL = "/facts?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, "facts", "Host facts", struct {
		Servers []factsView
		Filter  store.FactsFilter
		Next    string
	}{list, f, nextURL})
	return nil
}
