package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/outdiff"
	"github.com/omserver/omserver-go/internal/store"
)

// Output comparisons: a host's output in two runs of the same module, side
// by side; and a run's hosts grouped by identical output with the majority
// first (drift), each outlier comparable with the majority's output.

// hostDiff is one comparison.
type hostDiff struct {
	Left       string       `json:"left"`  // what the left side is ("run X on H", "majority of N hosts")
	Right      string       `json:"right"` // what the right side is
	LeftRun    string       `json:"left_run,omitempty"`
	RightRun   string       `json:"right_run,omitempty"`
	Host       string       `json:"host"`
	Diff       outdiff.Diff `json:"diff"`
	ModuleID   int64        `json:"module_id"`
	ModuleName string       `json:"module_name"`
}

// queryHost reads a required ?name= host address.
func queryHost(r *http.Request, name string) (string, error) {
	ip := strings.TrimSpace(r.URL.Query().Get(name))
	if ip == "" || len(ip) > store.MaxIPLen {
		return "", invalidf("query parameter %s must be a server address", name)
	}
	return ip, nil
}

func validRunID(id string) error {
	if id == "" || len(id) > 64 {
		return invalidf("run id %q is not valid", clipRunes(id, 80))
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return invalidf("run id %q is not valid", clipRunes(id, 80))
		}
	}
	return nil
}

// compareRuns compares host's output in runs a and b of one module.
func (s *Server) compareRuns(r *http.Request) (hostDiff, error) {
	q := r.URL.Query()
	a, b := q.Get("a"), q.Get("b")
	for _, id := range []string{a, b} {
		if err := validRunID(id); err != nil {
			return hostDiff{}, err
		}
	}
	host, err := queryHost(r, "host")
	if err != nil {
		return hostDiff{}, err
	}
	ctx := r.Context()
	ra, err := s.st.GetRunInfo(ctx, a)
	if err != nil {
		return hostDiff{}, err
	}
	rb, err := s.st.GetRunInfo(ctx, b)
	if err != nil {
		return hostDiff{}, err
	}
	if ra.ModuleID != rb.ModuleID {
		return hostDiff{}, invalidf("runs %s and %s ran different modules (%d and %d): only outputs of one module compare", a, b, ra.ModuleID, rb.ModuleID)
	}
	oa, err := s.st.RunHostOutput(ctx, a, host)
	if err != nil {
		return hostDiff{}, err
	}
	ob, err := s.st.RunHostOutput(ctx, b, host)
	if err != nil {
		return hostDiff{}, err
	}
	return hostDiff{Left: "run " + a + " (" + fmtTime(ra.CreatedAt) + ")", Right: "run " + b + " (" + fmtTime(rb.CreatedAt) + ")",
		LeftRun: a, RightRun: b, Host: host, Diff: outdiff.Compare(oa.Stdout, ob.Stdout), ModuleID: ra.ModuleID, ModuleName: ra.ModuleName}, nil
}

// drift is a run's outputs grouped, and optionally one host against the
// majority.
type drift struct {
	Run    store.Run       `json:"run"`
	Groups []outdiff.Group `json:"groups"`
	Hosts  int             `json:"hosts"` // results compared
	Diff   *hostDiff       `json:"diff,omitempty"`
}

func (s *Server) runDrift(ctx context.Context, runID, host string) (drift, error) {
	if err := validRunID(runID); err != nil {
		return drift{}, err
	}
	run, err := s.st.GetRunInfo(ctx, runID)
	if err != nil {
		return drift{}, err
	}
	g := outdiff.NewGrouper()
	n := 0
	var after int64
	for {
		page, err := s.st.RunOutputs(ctx, runID, after, 0)
		if err != nil {
			return drift{}, err
		}
		for _, o := range page {
			g.Add(o.IP, o.Stdout)
			after = o.ID
		}
		n += len(page)
		if len(page) == 0 {
			break
		}
	}
	d := drift{Run: run, Groups: g.Groups(), Hosts: n}
	if host != "" && len(d.Groups) > 0 {
		o, err := s.st.RunHostOutput(ctx, runID, host)
		if err != nil {
			return drift{}, err
		}
		maj := d.Groups[0]
		d.Diff = &hostDiff{Left: "majority output (" + itoaInt(maj.Count) + " of " + itoaInt(n) + " hosts)", Right: host,
			LeftRun: runID, RightRun: runID, Host: host, Diff: outdiff.Compare(maj.Sample, o.Stdout), ModuleID: run.ModuleID, ModuleName: run.ModuleName}
	}
	return d, nil
}

func itoaInt(n int) string { return strconv.Itoa(n) }

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request) error {
	d, err := s.compareRuns(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) apiDrift(w http.ResponseWriter, r *http.Request) error {
	d, err := s.runDrift(r.Context(), urlParam(r, "id"), strings.TrimSpace(r.URL.Query().Get("host")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) pageDiff(w http.ResponseWriter, r *http.Request) error {
	d, err := s.compareRuns(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "diff", "Compare outputs", struct {
		Diff  *hostDiff
		Drift *drift
	}{&d, nil})
	return nil
}

func (s *Server) pageDrift(w http.ResponseWriter, r *http.Request) error {
	d, err := s.runDrift(r.Context(), urlParam(r, "id"), strings.TrimSpace(r.URL.Query().Get("host")))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "diff", "Output drift", struct {
		Diff  *hostDiff
		Drift *drift
	}{d.Diff, &d})
	return nil
}
