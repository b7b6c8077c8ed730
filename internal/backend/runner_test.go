package backend

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// scripted is a Connector whose sessions do what the test says, and
// records what the runner asked of them.
type scripted struct {
	connect func(ctx context.Context) error
	copy    func(ctx context.Context, c *Copy) error
	command func(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error)
	check   func(Step) error

	mu       sync.Mutex
	connects int
	calls    []string
	closes   int
}

func (s *scripted) Connect(ctx context.Context, _ task.Host, _ Options) (Session, error) {
	s.mu.Lock()
	s.connects++
	s.mu.Unlock()
	if s.connect != nil {
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
	}
	return scriptedSession{s}, nil
}

func (s *scripted) record(call string) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

type scriptedSession struct{ s *scripted }

func (ss scriptedSession) Copy(ctx context.Context, c *Copy) error {
	ss.s.record("copy " + c.Dest)
	if ss.s.copy != nil {
		return ss.s.copy(ctx, c)
	}
	return nil
}

func (ss scriptedSession) Command(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	ss.s.record("run " + cmd)
	if ss.s.command != nil {
		return ss.s.command(ctx, cmd, stdout, stderr)
	}
	_, _ = io.WriteString(stdout, cmd+"\n")
	return 0, nil
}

func (ss scriptedSession) Close() error {
	ss.s.mu.Lock()
	ss.s.closes++
	ss.s.mu.Unlock()
	return nil
}

// checkingConnector adds CheckStep to scripted.
type checkingConnector struct{ *scripted }

func (c checkingConnector) CheckStep(s Step) error { return c.check(s) }

// waitStop is a command that runs until ctx ends and says so.
func waitStop(ctx context.Context, _ string, stdout, _ io.Writer) (int, error) {
	_, _ = io.WriteString(stdout, "started\n")
	<-ctx.Done()
	return -1, errors.New("the remote command was stopped")
}

func TestRunner(t *testing.T) {
	host := task.Host{IP: "127.0.0.1", Name: "h1"}
	cp := &Copy{Src: "/m/files/a.conf", Dest: "/etc/a.conf", Mode: 0o644}
	cancelled := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	tests := []struct {
		name       string
		conn       *scripted
		checker    bool
		ctx        func() context.Context
		steps      []Step
		opts       Options
		defTimeout time.Duration
		wantStatus task.Status
		wantCode   int
		wantErr    string // the whole Error
		wantOut    string
		wantCalls  []string
		wantClose  int
		noConnect  bool
	}{
		{
			name:       "copy then commands",
			conn:       &scripted{},
			steps:      []Step{{Copy: cp, Command: "one"}, {Command: "two"}},
			wantStatus: task.StatusOK, wantCode: 0, wantOut: "one\ntwo\n",
			wantCalls: []string{"copy /etc/a.conf", "run one", "run two"}, wantClose: 1,
		},
		{
			name:       "copy only",
			conn:       &scripted{},
			steps:      []Step{{Copy: cp}},
			wantStatus: task.StatusOK, wantCode: 0,
			wantCalls: []string{"copy /etc/a.conf"}, wantClose: 1,
		},
		{
			name:       "invalid steps never connect",
			conn:       &scripted{},
			steps:      []Step{{Command: "ok"}, {Command: " "}},
			wantStatus: task.StatusFailed, wantCode: -1,
			wantErr: "step 2: neither a copy nor a command", noConnect: true,
		},
		{
			name: "the backend's own step check",
			conn: &scripted{check: func(s Step) error {
				return map[bool]error{true: errors.New("holds a tab")}[strings.Contains(s.Command, "\t")]
			}},
			checker:    true,
			steps:      []Step{{Command: "ok"}, {Command: "a\tb"}},
			wantStatus: task.StatusFailed, wantCode: -1, wantErr: "step 2: holds a tab", noConnect: true,
		},
		{
			name:       "connect fails: unreachable by default",
			conn:       &scripted{connect: func(context.Context) error { return errors.New("connection refused") }},
			steps:      []Step{{Command: "x"}},
			wantStatus: task.StatusUnreachable, wantCode: -1, wantErr: "connection refused",
		},
		{
			name:       "connect fails with its own status",
			conn:       &scripted{connect: func(context.Context) error { return WithStatus(task.StatusFailed, errors.New("no name")) }},
			steps:      []Step{{Command: "x"}},
			wantStatus: task.StatusFailed, wantCode: -1, wantErr: "no name",
		},
		{
			name:       "cancelled while connecting",
			ctx:        cancelled,
			conn:       &scripted{connect: func(ctx context.Context) error { return ctx.Err() }},
			steps:      []Step{{Command: "x"}},
			wantStatus: task.StatusCancelled, wantCode: -1, wantErr: "cancelled while connecting: context canceled",
		},
		{
			name:       "cancelled before the first step",
			ctx:        cancelled,
			conn:       &scripted{},
			steps:      []Step{{Command: "x"}},
			wantStatus: task.StatusCancelled, wantCode: -1, wantErr: "step 1: cancelled before it started", wantClose: 1,
		},
		{
			name: "non-zero exit stops the steps",
			conn: &scripted{command: func(_ context.Context, cmd string, stdout, _ io.Writer) (int, error) {
				_, _ = io.WriteString(stdout, cmd)
				return 3, nil
			}},
			steps:      []Step{{Command: "a"}, {Command: "b"}},
			wantStatus: task.StatusFailed, wantCode: 3, wantErr: "step 1: exit status 3", wantOut: "a",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
		{
			name: "command error: failed by default",
			conn: &scripted{command: func(context.Context, string, io.Writer, io.Writer) (int, error) {
				return -1, errors.New("connection lost")
			}},
			steps:      []Step{{Command: "a"}},
			wantStatus: task.StatusFailed, wantCode: -1, wantErr: "step 1: connection lost",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
		{
			name: "command error with its own status",
			conn: &scripted{command: func(context.Context, string, io.Writer, io.Writer) (int, error) {
				return -1, WithStatus(task.StatusUnreachable, errors.New("minion did not return"))
			}},
			steps:      []Step{{Command: "a"}},
			wantStatus: task.StatusUnreachable, wantCode: -1, wantErr: "step 1: minion did not return",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
		{
			name:       "copy fails: the command does not run",
			conn:       &scripted{copy: func(context.Context, *Copy) error { return errors.New("permission denied") }},
			steps:      []Step{{Copy: cp, Command: "a"}},
			wantStatus: task.StatusFailed, wantCode: -1, wantErr: "step 1: copy to /etc/a.conf failed: permission denied",
			wantCalls: []string{"copy /etc/a.conf"}, wantClose: 1,
		},
		{
			name:       "timed out during a command",
			conn:       &scripted{command: waitStop},
			steps:      []Step{{Command: "a"}, {Command: "b"}},
			opts:       Options{Timeout: 50 * time.Millisecond},
			wantStatus: task.StatusTimeout, wantCode: -1, wantOut: "started\n",
			wantErr:   "step 1: timed out after the host timeout of 50ms; the remote command was stopped",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
		{
			name:       "the backend's default timeout when the run sets none",
			conn:       &scripted{command: waitStop},
			steps:      []Step{{Command: "a"}},
			defTimeout: 40 * time.Millisecond,
			wantStatus: task.StatusTimeout, wantCode: -1, wantOut: "started\n",
			wantErr:   "step 1: timed out after the host timeout of 40ms; the remote command was stopped",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
		{
			name: "timed out during a copy",
			conn: &scripted{copy: func(ctx context.Context, _ *Copy) error {
				<-ctx.Done()
				return errors.New("the transfer was abandoned")
			}},
			steps:      []Step{{Copy: cp, Command: "a"}},
			opts:       Options{Timeout: 30 * time.Millisecond},
			wantStatus: task.StatusTimeout, wantCode: -1,
			wantErr:   "step 1: timed out after the host timeout of 30ms during copy to /etc/a.conf; the transfer was abandoned",
			wantCalls: []string{"copy /etc/a.conf"}, wantClose: 1,
		},
		{
			name: "a command that ends on its own as time runs out keeps its outcome",
			conn: &scripted{command: func(ctx context.Context, cmd string, stdout, _ io.Writer) (int, error) {
				if cmd == "a" {
					<-ctx.Done()
					return 0, nil
				}
				return 0, nil
			}},
			steps:      []Step{{Command: "a"}, {Command: "b"}},
			opts:       Options{Timeout: 30 * time.Millisecond},
			wantStatus: task.StatusTimeout, wantCode: 0,
			wantErr:   "step 2: timed out after the host timeout of 30ms before it started",
			wantCalls: []string{"run a"}, wantClose: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			var conn Connector = tc.conn
			if tc.checker {
				conn = checkingConnector{tc.conn}
			}
			r := NewRunner("test", conn, tc.defTimeout)
			res := r.Run(ctx, host, tc.steps, tc.opts)
			if res.Status != tc.wantStatus || res.ExitCode != tc.wantCode || res.Error != tc.wantErr || res.Stdout != tc.wantOut {
				t.Fatalf("got %s exit %d error %q stdout %q; want %s exit %d error %q stdout %q",
					res.Status, res.ExitCode, res.Error, res.Stdout, tc.wantStatus, tc.wantCode, tc.wantErr, tc.wantOut)
			}
			if res.Host != host || res.Started.IsZero() || res.Duration <= 0 {
				t.Errorf("host %v started %v duration %v", res.Host, res.Started, res.Duration)
			}
			if strings.Join(tc.conn.calls, "|") != strings.Join(tc.wantCalls, "|") {
				t.Errorf("calls %q, want %q", tc.conn.calls, tc.wantCalls)
			}
			if tc.conn.closes != tc.wantClose {
				t.Errorf("Close called %d times, want %d", tc.conn.closes, tc.wantClose)
			}
			wantConnects := 1
			if tc.noConnect {
				wantConnects = 0
			}
			if tc.conn.connects != wantConnects {
				t.Errorf("connected %d times, want %d", tc.conn.connects, wantConnects)
			}
		})
	}
	if r := NewRunner("ssh", &scripted{}, 0); r.Name() != "ssh" {
		t.Errorf("Name = %q", r.Name())
	}
}

// The runner caps the kept output and sets the truncated flags the same
// way for every backend.
func TestRunnerOutputCap(t *testing.T) {
	conn := &scripted{command: func(_ context.Context, _ string, stdout, stderr io.Writer) (int, error) {
		_, _ = io.WriteString(stdout, "0123456789")
		_, _ = io.WriteString(stderr, "abc")
		return 0, nil
	}}
	res := NewRunner("test", conn, 0).Run(context.Background(), task.Host{IP: "127.0.0.1"}, []Step{{Command: "x"}}, Options{OutputCap: 4})
	if res.Stdout != "0123" || !res.StdoutTruncated || res.Stderr != "abc" || res.StderrTruncated {
		t.Fatalf("result %+v", res)
	}
}
