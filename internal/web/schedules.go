package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/omserver/omserver-go/internal/schedule"
	"github.com/omserver/omserver-go/internal/store"
)

// Schedules: cron-style runs of a module on a saved host list, an
// application or a function category. Everyone reads them; operators and
// admins create, change, pause and delete them.

// scheduleRequest is the body of POST and PUT /api/v1/schedules.
type scheduleRequest struct {
	Name        string            `json:"name"`
	ModuleID    int64             `json:"module_id"`
	Params      map[string]string `json:"params"`
	TargetKind  string            `json:"target_kind"`
	TargetID    int64             `json:"target_id"`
	TargetHosts []string          `json:"target_hosts"`
	Cron        string            `json:"cron"`
	Enabled     *bool             `json:"enabled"`
}

func (b scheduleRequest) spec(user string) schedule.Spec {
	return schedule.Spec{Name: b.Name, ModuleID: b.ModuleID, Params: b.Params, TargetKind: b.TargetKind, TargetID: b.TargetID,
		TargetHosts: b.TargetHosts, Cron: b.Cron, Enabled: b.Enabled == nil || *b.Enabled, User: user}
}

func scheduleDetail(sc store.Schedule) string {
	target := fmt.Sprintf("%s %d", sc.TargetKind, sc.TargetID)
	if sc.TargetKind == store.TargetHosts {
		target = "hosts " + clipRunes(strings.Join(sc.TargetHosts, ","), 500)
	}
	return fmt.Sprintf("%d %s: module %d on %s at %q enabled=%t", sc.ID, sc.Name, sc.ModuleID, target, sc.Cron, sc.Enabled)
}

func (s *Server) saveSchedule(r *http.Request, id int64, sp schedule.Spec) (store.Schedule, error) {
	var sc store.Schedule
	var err error
	action := "schedule.update"
	if id == 0 {
		action = "schedule.create"
		sc, err = s.sched.Create(r.Context(), sp)
	} else {
		sc, err = s.sched.Update(r.Context(), id, sp)
	}
	if err != nil {
		return sc, err
	}
	s.audit(r, authOf(r).Name, action, scheduleDetail(sc))
	return sc, nil
}

func (s *Server) setScheduleEnabled(r *http.Request, enabled bool) (store.Schedule, error) {
	id, err := idParam(r, "id", "schedule")
	if err != nil {
		return store.Schedule{}, err
	}
	sc, err := s.sched.SetEnabled(r.Context(), id, enabled)
	if err != nil {
		return sc, err
	}
	action := "schedule.pause"
	if enabled {
		action = "schedule.resume"
	}
	s.audit(r, authOf(r).Name, action, scheduleDetail(sc))
	return sc, nil
}

func (s *Server) deleteSchedule(r *http.Request) error {
	id, err := idParam(r, "id", "schedule")
	if err != nil {
		return err
	}
	sc, err := s.st.GetSchedule(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.st.DeleteSchedule(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "schedule.delete", scheduleDetail(sc))
	return nil
}

// fires reads one page of a schedule's history (?before=ID).
func (s *Server) fires(r *http.Request, id int64) ([]store.Fire, int64, error) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, 0, invalidf("before %q is not a positive id", clipRunes(v, 40))
		}
		before = n
	}
	const per = 50
	list, err := s.st.ListFires(r.Context(), id, before, per)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(list) == per {
		next = list[len(list)-1].ID
	}
	return list, next, nil
}

func (s *Server) apiSchedules(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListSchedules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
	return nil
}

func (s *Server) apiSchedule(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "schedule")
	if err != nil {
		return err
	}
	sc, err := s.st.GetSchedule(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

func (s *Server) apiScheduleHistory(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "schedule")
	if err != nil {
		return err
	}
	if _, err := s.st.GetSchedule(r.Context(), id); err != nil {
		return err
	}
	list, next, err := s.fires(r, id)
	if err != nil {
		return err
	}
	body := map[string]any{"fires": list}
	if next > 0 {
		body["next_before"] = next
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) apiScheduleSave(w http.ResponseWriter, r *http.Request) error {
	var id int64
	if urlParam(r, "id") != "" {
		var err error
		if id, err = idParam(r, "id", "schedule"); err != nil {
			return err
		}
	}
	var b scheduleRequest
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	sc, err := s.saveSchedule(r, id, b.spec(authOf(r).Name))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, sc)
	return nil
}

func (s *Server) apiSchedulePause(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.setScheduleEnabled(r, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

func (s *Server) apiScheduleResume(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.setScheduleEnabled(r, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

func (s *Server) apiScheduleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteSchedule(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- pages ---

type schedulesPage struct {
	Schedules []store.Schedule
	Selected  *store.Schedule
	Fires     []store.Fire
	NextFire  int64
	Modules   []store.Module
	Funs      []store.FunCateg
	Apps      []store.AppCateg
	ParamText string // the selected schedule's parameters as name=value lines
	HostText  string
}

func (s *Server) pageSchedules(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	list, err := s.st.ListSchedules(ctx)
	if err != nil {
		return err
	}
	d := schedulesPage{Schedules: list}
	if d.Modules, err = s.st.ListModules(ctx); err != nil {
		return err
	}
	if d.Funs, err = s.st.ListFunCategs(ctx); err != nil {
		return err
	}
	for _, f := range d.Funs {
		apps, err := s.st.ListAppCategs(ctx, f.ID)
		if err != nil {
			return err
		}
		d.Apps = append(d.Apps, apps...)
	}
	if urlParam(r, "id") != "" {
		id, err := idParam(r, "id", "schedule")
		if err != nil {
			return err
		}
		sc, err := s.st.GetSchedule(ctx, id)
		if err != nil {
			return err
		}
		d.Selected = &sc
		if d.Fires, d.NextFire, err = s.fires(r, id); err != nil {
			return err
		}
		var lines []string
		for k, v := range sc.Params {
			lines = append(lines, k+"="+v)
		}
		d.ParamText = strings.Join(lines, "\n")
		d.HostText = strings.Join(sc.TargetHosts, "\n")
	}
	s.render(w, r, http.StatusOK, "schedules", "Schedules", d)
	return nil
}

// scheduleFromForm reads the add/edit form: parameters as name=value
// lines, hosts one per line (or comma-separated).
func scheduleFromForm(r *http.Request, user string) (schedule.Spec, error) {
	f := r.PostForm
	sp := schedule.Spec{Name: f.Get("name"), TargetKind: f.Get("target_kind"), Cron: f.Get("cron"), Enabled: f.Get("enabled") == "on",
		User: user, Params: map[string]string{}}
	var err error
	if sp.ModuleID, err = strconv.ParseInt(strings.TrimSpace(f.Get("module_id")), 10, 64); err != nil {
		return sp, invalidf("choose a module")
	}
	for _, line := range strings.Split(f.Get("params"), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return sp, invalidf("parameter line %q is not name=value", clipRunes(line, 60))
		}
		sp.Params[strings.TrimSpace(k)] = v
	}
	switch sp.TargetKind {
	case store.TargetHosts:
		sp.TargetHosts = strings.FieldsFunc(f.Get("hosts"), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' })
	case store.TargetApp:
		sp.TargetID, _ = strconv.ParseInt(f.Get("app_id"), 10, 64)
	case store.TargetFun:
		sp.TargetID, _ = strconv.ParseInt(f.Get("fun_id"), 10, 64)
	}
	return sp, nil
}

func (s *Server) pageScheduleSave(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	var id int64
	if urlParam(r, "id") != "" {
		var err error
		if id, err = idParam(r, "id", "schedule"); err != nil {
			return err
		}
	}
	sp, err := scheduleFromForm(r, authOf(r).Name)
	if err != nil {
		return err
	}
	sc, err := s.saveSchedule(r, id, sp)
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/schedules/%d?ok=saved", sc.ID), http.StatusSeeOther)
	return nil
}

func (s *Server) pageScheduleEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc, err := s.setScheduleEnabled(r, enabled)
		if err != nil {
			return err
		}
		http.Redirect(w, r, fmt.Sprintf("/schedules/%d?ok=saved", sc.ID), http.StatusSeeOther)
		return nil
	}
}

func (s *Server) pageScheduleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteSchedule(r); err != nil {
		return err
	}
	http.Redirect(w, r, "/schedules?ok=deleted", http.StatusSeeOther)
	return nil
}
