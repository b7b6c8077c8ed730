package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/store"
)

// Lists in pages and the API are paged by key: ?limit= rows after
// ?cursor= (opaque, from the previous answer's next link). Every list
// answer carries "next", the URL of the following page, or null on the
// last page. Before cursors, the API took ?page= and ?per_page=: per_page
// is still read as limit, page=1 as the first page; a later page number is
// refused with the way to go on.

// pageRequest reads ?limit= (or the older ?per_page=), ?cursor= and the
// older ?page=. def is the page size when none is asked.
func pageRequest(r *http.Request, def int) (store.PageRequest, error) {
	q := r.URL.Query()
	if v := q.Get("page"); v != "" && v != "1" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return store.PageRequest{}, invalidf("page %q is not a page number", clipRunes(v, 40))
		}
		return store.PageRequest{}, invalidf("page=%d: lists are paged by cursor: follow the \"next\" link of the previous page (page=1 is the first page)", n)
	}
	p := store.PageRequest{Limit: def, Cursor: q.Get("cursor")}
	name, v := "limit", q.Get("limit")
	if v == "" {
		name, v = "per_page", q.Get("per_page")
	}
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxLimit {
			return store.PageRequest{}, invalidf("%s %q must be 1..%d", name, clipRunes(v, 40), store.MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// nextURL is the request's own URL with cursor set to next (and the older
// page parameter dropped); "" when there is no next page. param names the
// cursor parameter (pages with several lists have one per list).
func nextURL(r *http.Request, param, next string) string {
	if next == "" {
		return ""
	}
	q := r.URL.Query()
	q.Del("page")
	q.Set(param, next)
	return r.URL.Path + "?" + q.Encode()
}

// firstURL is the request's URL without the cursor: the first page of the
// same list ("" when the request already is the first page).
func firstURL(r *http.Request, param string) string {
	q := r.URL.Query()
	if q.Get(param) == "" {
		return ""
	}
	q.Del(param)
	q.Del("page")
	if len(q) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + q.Encode()
}

// jsonNext is "next" in a JSON answer: the URL, or null on the last page.
func jsonNext(u string) *string {
	if u == "" {
		return nil
	}
	return &u
}

// queryText reads an optional text filter, trimmed.
func queryText(r *http.Request, name string) string {
	return strings.TrimSpace(r.URL.Query().Get(name))
}

// dateParam reads an optional date bound: 2006-01-02, 2006-01-02T15:04
// (an HTML datetime-local), 2006-01-02T15:04:05 or RFC 3339; times without
// a zone are UTC, like every time the site shows. A bare date as the upper
// bound means the end of that day.
func dateParam(r *http.Request, name string, upper bool) (time.Time, error) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if upper {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, invalidf("%s %q is not a date (2006-01-02) or time (2006-01-02T15:04:05Z)", name, clipRunes(v, 40))
}

// pageLinks are the links under a list on a page.
type pageLinks struct {
	First string // the first page, when this is not it
	Next  string // the following page, when there is one
}
