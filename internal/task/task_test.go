package task

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func validTask() Task {
	return Task{RunID: "r1", ModuleID: 1003, Hosts: []Host{{IP: "127.0.0.1", Name: "localhost"}},
		Params: map[string]string{"sys_param_1": "50"}, IssuedAt: time.Now(), Nonce: "n"}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Task)
		wantErr string
	}{
		{"valid", func(*Task) {}, ""},
		{"no run id", func(t *Task) { t.RunID = "" }, "run id"},
		{"long run id", func(t *Task) { t.RunID = strings.Repeat("x", MaxRunIDBytes+1) }, "run id"},
		{"module id zero", func(t *Task) { t.ModuleID = 0 }, "module id"},
		{"no hosts", func(t *Task) { t.Hosts = nil }, "no hosts"},
		{"empty host", func(t *Task) { t.Hosts = []Host{{}} }, "neither ip nor name"},
		{"duplicate host", func(t *Task) { t.Hosts = append(t.Hosts, t.Hosts[0]) }, "twice"},
		{"too many hosts", func(t *Task) {
			t.Hosts = make([]Host, MaxHosts+1)
			for i := range t.Hosts {
				t.Hosts[i] = Host{IP: "127.0.0.1", Name: strings.Repeat("h", 1+i%7) + string(rune('a'+i%26))}
			}
		}, "limit"},
		{"long param", func(t *Task) { t.Params["sys_param_1"] = strings.Repeat("x", MaxParamBytes+1) }, "too long"},
		{"no issue time", func(t *Task) { t.IssuedAt = time.Time{} }, "issue time"},
		{"no nonce", func(t *Task) { t.Nonce = "" }, "nonce"},
		{"long nonce", func(t *Task) { t.Nonce = strings.Repeat("n", MaxNonceBytes+1) }, "nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := validTask()
			tt.mutate(&tk)
			err := tk.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid task refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestCappedBuffer(t *testing.T) {
	tests := []struct {
		cap       int
		writes    []string
		want      string
		truncated bool
	}{
		{cap: 5, writes: []string{"abc"}, want: "abc"},
		{cap: 5, writes: []string{"abcde"}, want: "abcde"},
		{cap: 5, writes: []string{"abc", "def"}, want: "abcde", truncated: true},
		{cap: 5, writes: []string{"abcdef", "gh"}, want: "abcde", truncated: true},
		{cap: 3, writes: []string{"abc", ""}, want: "abc"},
	}
	for _, tt := range tests {
		b := &CappedBuffer{Cap: tt.cap}
		for _, w := range tt.writes {
			n, err := b.Write([]byte(w))
			if err != nil || n != len(w) {
				t.Fatalf("Write(%q) = %d, %v: a capped writer must report the whole write", w, n, err)
			}
		}
		if b.String() != tt.want || b.Truncated() != tt.truncated {
			t.Errorf("cap %d writes %q: got %q truncated=%v, want %q truncated=%v", tt.cap, tt.writes, b.String(), b.Truncated(), tt.want, tt.truncated)
		}
	}
}

func TestHostString(t *testing.T) {
	if got := (Host{IP: "127.0.0.1", Name: "localhost"}).String(); got != "127.0.0.1*localhost" {
		t.Errorf("String = %q", got)
	}
	if got := (Host{IP: "127.0.0.1"}).String(); got != "127.0.0.1" {
		t.Errorf("String = %q", got)
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		counts map[Status]int
		total  int
		want   RunStatus
	}{
		{"all ok", map[Status]int{StatusOK: 3}, 3, RunOK},
		{"one failed", map[Status]int{StatusOK: 2, StatusFailed: 1}, 3, RunPartial},
		{"one without result", map[Status]int{StatusOK: 2}, 3, RunPartial},
		{"all failed", map[Status]int{StatusFailed: 2, StatusTimeout: 1}, 3, RunFailed},
		{"all unreachable", map[Status]int{StatusUnreachable: 40}, 40, RunFailed},
		{"no results at all", map[Status]int{}, 2, RunFailed},
		{"cancelled hosts only", map[Status]int{StatusCancelled: 1}, 1, RunFailed},
	}
	for _, tt := range tests {
		if got := Outcome(tt.counts, tt.total); got != tt.want {
			t.Errorf("%s: Outcome = %s, want %s", tt.name, got, tt.want)
		}
	}
	for _, s := range []RunStatus{RunOK, RunPartial, RunFailed, RunCancelled, RunInterrupted, RunDone} {
		if !s.Valid() || !s.Finished() {
			t.Errorf("%s: valid %v finished %v", s, s.Valid(), s.Finished())
		}
	}
	if RunRunning.Finished() || RunStatus("weird").Valid() {
		t.Error("running is not finished; unknown statuses are not valid")
	}
}

func TestCheckConfirmed(t *testing.T) {
	hosts := func(n int) []Host {
		out := make([]Host, n)
		for i := range out {
			out[i] = Host{IP: "127.0.0." + string(rune('1'+i))}
		}
		return out
	}
	tests := []struct {
		name      string
		hosts     int
		confirmed int
		largeRun  int
		ok        bool
	}{
		{"small run, nothing typed", 3, 0, 5, true},
		{"at the threshold", 5, 0, 5, true},
		{"over, nothing typed", 6, 0, 5, false},
		{"over, wrong number", 6, 5, 5, false},
		{"over, confirmed", 6, 6, 5, true},
		{"no threshold", 9, 0, 0, true},
	}
	for _, tt := range tests {
		tk := validTask()
		tk.Hosts, tk.ConfirmedHosts = hosts(tt.hosts), tt.confirmed
		err := tk.CheckConfirmed(tt.largeRun)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrUnconfirmed)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	tk := validTask()
	tk.ConfirmedHosts = -1
	if tk.Validate() == nil {
		t.Error("a negative confirmed count passed validation")
	}
}

func TestNarrowRollout(t *testing.T) {
	tests := []struct {
		name            string
		module, request *Rollout
		n               int
		batches         string
		canary          bool
		limit           int
		confirm         bool
		bound           time.Duration
	}{
		{"none", nil, nil, 5, "[5]", false, -1, false, 0},
		{"module 10% canary", &Rollout{BatchPercent: 10, Canary: true, CanaryWait: time.Minute, MaxFailurePercent: 10}, nil, 25, "[3 3 3 3 3 3 3 3 1]", true, 2, false, time.Minute},
		{"request narrows", &Rollout{BatchPercent: 50, MaxFailures: 5}, &Rollout{BatchSize: 2, MaxFailures: 1}, 5, "[2 2 1]", false, 1, false, 0},
		{"request cannot widen", &Rollout{BatchSize: 2, MaxFailures: 1}, &Rollout{BatchSize: 10, MaxFailures: 9}, 5, "[2 2 1]", false, 1, false, 0},
		{"request adds a canary", &Rollout{BatchSize: 2}, &Rollout{Canary: true}, 4, "[2 2]", true, -1, false, 0},
		{"tiny percent", &Rollout{BatchPercent: 1}, nil, 3, "[1 1 1]", false, -1, false, 0},
		{"request asks to confirm a timed canary", &Rollout{BatchSize: 1, Canary: true, CanaryWait: time.Minute}, &Rollout{CanaryConfirm: true}, 2, "[1 1]", true, -1, true, time.Minute},
		{"confirmation without a bound waits a day at most", &Rollout{BatchSize: 1, CanaryConfirm: true}, nil, 2, "[1 1]", true, -1, true, MaxCanaryWait},
		{"a request cannot drop the module's confirmation", &Rollout{BatchSize: 1, CanaryConfirm: true}, &Rollout{Canary: true}, 2, "[1 1]", true, -1, true, MaxCanaryWait},
	}
	for _, tt := range tests {
		p := Narrow(tt.module, tt.request, tt.n)
		if fmt.Sprint(p.Batches) != tt.batches || p.Canary != tt.canary || p.FailLimit != tt.limit || p.CanaryConfirm != tt.confirm || p.PauseBound() != tt.bound {
			t.Errorf("%s: %+v (pause %s), want %s canary=%v limit=%d confirm=%v pause %s", tt.name, p, p.PauseBound(), tt.batches, tt.canary, tt.limit, tt.confirm, tt.bound)
		}
	}
	for _, bad := range []*Rollout{{BatchSize: -1}, {BatchPercent: 101}, {BatchSize: 1, BatchPercent: 1}, {CanaryWait: -1}, {MaxFailures: 1, MaxFailurePercent: 1}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
