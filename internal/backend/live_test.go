package backend

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// chunks records what an OnOutput hook is given, and fails the test when
// two calls for the host overlap.
type chunks struct {
	mu     sync.Mutex
	inside bool
	got    []chunk
	t      *testing.T
}

type chunk struct {
	stream task.Stream
	data   string
}

func (c *chunks) hook(stream task.Stream, data []byte) {
	c.mu.Lock()
	if c.inside {
		c.t.Error("OnOutput called concurrently for one host")
	}
	c.inside = true
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // widen the window for an overlap
	c.mu.Lock()
	c.got = append(c.got, chunk{stream, string(data)})
	c.inside = false
	c.mu.Unlock()
}

func (c *chunks) all(stream task.Stream) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, ch := range c.got {
		if ch.stream == stream {
			b.WriteString(ch.data)
		}
	}
	return b.String()
}

func TestOnOutput(t *testing.T) {
	const zh = "主机" // 3 bytes each
	tests := []struct {
		name       string
		cap        int
		stdout     []string // writes, in order
		stderr     []string
		wantChunks []chunk // stdout chunks, in order
		wantOut    string  // everything passed on for stdout
		wantErr    string
	}{
		{
			name:       "chunks as written",
			stdout:     []string{"one\n", "two\n"},
			wantChunks: []chunk{{task.Stdout, "one\n"}, {task.Stdout, "two\n"}},
			wantOut:    "one\ntwo\n",
		},
		{
			name:       "a character split across writes is held back whole",
			stdout:     []string{"a" + zh[:4], zh[4:] + "b"},
			wantChunks: []chunk{{task.Stdout, "a主"}, {task.Stdout, "机b"}},
			wantOut:    "a" + zh + "b",
		},
		{
			name:       "an incomplete character at the end is passed on at the command's end",
			stdout:     []string{"x" + zh[:2]},
			wantChunks: []chunk{{task.Stdout, "x"}, {task.Stdout, zh[:2]}},
			wantOut:    "x" + zh[:2],
		},
		{
			name:       "invalid bytes are not held",
			stdout:     []string{"\xff\xfe", "ok"},
			wantChunks: []chunk{{task.Stdout, "\xff\xfe"}, {task.Stdout, "ok"}},
			wantOut:    "\xff\xfeok",
		},
		{
			name:       "at most the cap per stream",
			cap:        5,
			stdout:     []string{"0123", "4567", "89"},
			stderr:     []string{"abcdefgh"},
			wantChunks: []chunk{{task.Stdout, "0123"}, {task.Stdout, "4"}},
			wantOut:    "01234",
			wantErr:    "abcde",
		},
		{
			name:    "stderr apart from stdout",
			stdout:  []string{"out"},
			stderr:  []string{"err1", "err2"},
			wantOut: "out", wantErr: "err1err2",
			wantChunks: []chunk{{task.Stdout, "out"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &chunks{t: t}
			conn := &scripted{command: func(_ context.Context, _ string, stdout, stderr io.Writer) (int, error) {
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // stderr from another goroutine, as exec and ssh do
					defer wg.Done()
					for _, s := range tc.stderr {
						_, _ = io.WriteString(stderr, s)
					}
				}()
				for _, s := range tc.stdout {
					buf := []byte(s)
					_, _ = stdout.Write(buf)
					for i := range buf { // the hook must have its own copy
						buf[i] = '!'
					}
				}
				wg.Wait()
				return 0, nil
			}}
			res := NewRunner("test", conn, 0).Run(context.Background(), task.Host{IP: "127.0.0.1"}, []Step{{Command: "x"}},
				Options{OutputCap: tc.cap, OnOutput: rec.hook})
			if res.Status != task.StatusOK {
				t.Fatalf("result %+v", res)
			}
			if got := rec.all(task.Stdout); got != tc.wantOut {
				t.Errorf("stdout passed on %q, want %q", got, tc.wantOut)
			}
			if got := rec.all(task.Stderr); got != tc.wantErr {
				t.Errorf("stderr passed on %q, want %q", got, tc.wantErr)
			}
			var outChunks []chunk
			for _, c := range rec.got {
				if c.stream == task.Stdout {
					outChunks = append(outChunks, c)
				}
			}
			if len(outChunks) != len(tc.wantChunks) {
				t.Fatalf("stdout chunks %q, want %q", outChunks, tc.wantChunks)
			}
			for i := range outChunks {
				if outChunks[i] != tc.wantChunks[i] {
					t.Fatalf("stdout chunks %q, want %q", outChunks, tc.wantChunks)
				}
			}
			// What was passed on is what the result kept.
			if res.Stdout != tc.wantOut || res.Stderr != tc.wantErr {
				t.Errorf("result kept %q / %q, passed on %q / %q", res.Stdout, res.Stderr, tc.wantOut, tc.wantErr)
			}
		})
	}
}

// A write after the host's run ended (a straggling output goroutine)
// never reaches the hook.
func TestOnOutputNeverAfterRun(t *testing.T) {
	rec := &chunks{t: t}
	var late io.Writer
	conn := &scripted{command: func(_ context.Context, _ string, stdout, _ io.Writer) (int, error) {
		late = stdout
		_, _ = io.WriteString(stdout, "in time")
		return 0, nil
	}}
	NewRunner("test", conn, 0).Run(context.Background(), task.Host{IP: "127.0.0.1"}, []Step{{Command: "x"}}, Options{OnOutput: rec.hook})
	_, _ = io.WriteString(late, "too late")
	if got := rec.all(task.Stdout); got != "in time" {
		t.Fatalf("passed on %q", got)
	}
}

func TestCompletePrefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"主", 3}, {"a主"[:2], 1}, {"a主"[:3], 1}, {"\xff", 1}, {"a\xe4\xb8", 1},
		{"😀"[:3], 0}, {"😀", 4}, {"\x80\x80\x80\x80", 4},
	} {
		if got := completePrefix([]byte(tc.in)); got != tc.want {
			t.Errorf("completePrefix(%q) = %d, want %d", tc.in, got, tc.want)
		}
		if got := completePrefix([]byte(tc.in)); utf8.Valid([]byte(tc.in)) && !utf8.Valid([]byte(tc.in[:got])) {
			t.Errorf("completePrefix(%q) cut a valid string at %d", tc.in, got)
		}
	}
}

// FuzzLiveChunks: however the output is split into writes, the chunks put
// back together are the kept output, and no chunk of valid UTF-8 output
// splits a character.
func FuzzLiveChunks(f *testing.F) {
	f.Add([]byte("主机 ok\n"), uint8(2), uint16(0))
	f.Add([]byte("\xff\xe4\xb8"), uint8(1), uint16(2))
	f.Add([]byte("😀😀😀"), uint8(5), uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, step uint8, capBytes uint16) {
		n := int(step%16) + 1
		var got []chunk
		conn := &scripted{command: func(_ context.Context, _ string, stdout, _ io.Writer) (int, error) {
			for i := 0; i < len(data); i += n {
				_, _ = stdout.Write(data[i:min(i+n, len(data))])
			}
			return 0, nil
		}}
		res := NewRunner("fuzz", conn, 0).Run(context.Background(), task.Host{IP: "127.0.0.1"}, []Step{{Command: "x"}},
			Options{OutputCap: int(capBytes), OnOutput: func(s task.Stream, d []byte) { got = append(got, chunk{s, string(d)}) }})
		var all strings.Builder
		for _, c := range got {
			all.WriteString(c.data)
			if c.data == "" {
				t.Fatal("empty chunk")
			}
			if utf8.Valid(data) && !utf8.ValidString(c.data) && len(all.String()) < len(res.Stdout) {
				t.Fatalf("chunk %q splits a character", c.data)
			}
		}
		if all.String() != res.Stdout {
			t.Fatalf("chunks %q, result kept %q", all.String(), res.Stdout)
		}
	})
}
