package relay

import (
	"encoding/json"
	"testing"

	"github.com/omserver/omserver-go/internal/task"
)

// FuzzDecodeTask feeds the master's task decoder (what follows a
// successful Open) arbitrary bytes: it must never panic, and whatever it
// accepts must be a valid task within the size limit.
func FuzzDecodeTask(f *testing.F) {
	seeds := []string{
		`{"run_id":"r1","module_id":1003,"hosts":[{"ip":"127.0.0.1","name":"web1"}],"params":{"sys_param_1":"10"},"user":"admin","issued_at":"2026-01-01T00:00:00Z","nonce":"abc"}`,
		`{"run_id":"r1","module_id":1003,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"2026-01-01T00:00:00Z","nonce":"abc","extra":1}`,
		`{"run_id":"r1","module_id":1003,"hosts":[{"ip":"127.0.0.1"}],"issued_at":"2026-01-01T00:00:00Z","nonce":"abc"} {}`,
		`{"run_id":"r1","module_id":1e400,"hosts":[],"issued_at":"2026-01-01T00:00:00Z","nonce":"abc"}`,
		`{"run_id":"r1","module_id":1003,"hosts":[{"ip":"1"},{"ip":"1"}],"issued_at":"2026-01-01T00:00:00Z","nonce":"abc"}`,
		`{"params":{"a":"; rm -rf /","b":"$(id)","c":"@@"}}`,
		`null`,
		`[]`,
		``,
		"\x00\xff{",
		`{"run_id":"r1","module_id":1003,"hosts":null,"issued_at":"bad time","nonce":"abc"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := decodeTask(data, limit)
		if err != nil {
			return
		}
		if len(data) > limit {
			t.Fatalf("accepted %d bytes over the limit of %d", len(data), limit)
		}
		if err := tk.Validate(); err != nil {
			t.Fatalf("accepted an invalid task: %v", err)
		}
	})
}

func TestDecodeTaskAcceptsAValidTask(t *testing.T) {
	doc := `{"run_id":"r1","module_id":1003,"hosts":[{"ip":"127.0.0.1","name":"web1"}],"params":{"sys_param_1":"10"},"user":"admin","issued_at":"2026-01-01T00:00:00Z","nonce":"abc"}`
	tk, err := decodeTask([]byte(doc), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if tk.RunID != "r1" || tk.ModuleID != 1003 || len(tk.Hosts) != 1 || tk.Hosts[0].Name != "web1" || tk.Params["sys_param_1"] != "10" || tk.Nonce != "abc" {
		t.Fatalf("decoded %+v", tk)
	}
	if _, err := decodeTask([]byte(doc), len(doc)-1); err == nil {
		t.Fatal("a task over the limit was accepted")
	}
}

// FuzzDecodeEvent feeds the client's event decoder (what follows opening a
// streamed message; with the legacy scheme anything can get this far): it
// must never panic, and what it accepts must be a known event type whose
// result, if any, has a known status.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"result","run_id":"r1","result":{"run_id":"r1","host":{"ip":"127.0.0.1"},"status":"ok","exit_code":0,"stdout":"x","stderr":"","started":"2026-01-01T00:00:00Z","duration_ns":5}}`,
		`{"type":"done","run_id":"r1"}`,
		`{"type":"done","run_id":"r1","result":{"status":"ok"}}`,
		`{"type":"result","run_id":"r1","result":{"status":"rebooted"}}`,
		`{"type":"result","run_id":"r1"}`,
		`{"type":"shell"}`,
		`{"seq":3,"type":"output","run_id":"r1","output":{"host":{"ip":"127.0.0.1"},"stream":"stderr","data":"line\n"}}`,
		`{"type":"output","run_id":"r1","output":{"host":{"ip":"127.0.0.1"},"stream":"stdin","data":"x"}}`,
		`{"type":"batch","run_id":"r1","batch":{"index":2,"count":3,"hosts":5,"paused":true,"confirm":true,"until":"2026-11-30T10:00:00Z"}}`,
		`{"type":"batch","run_id":"r1","batch":{"index":3,"count":2,"hosts":1}}`,
		`null`,
		"\x9c\x01garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		switch ev.Type {
		case task.EventResult:
			if ev.Result == nil || !ev.Result.Status.Valid() || ev.Output != nil {
				t.Fatalf("accepted a result event with result %+v, output %+v", ev.Result, ev.Output)
			}
		case task.EventOutput:
			if ev.Output == nil || !ev.Output.Stream.Valid() || ev.Result != nil || (ev.Output.Host.IP == "" && ev.Output.Host.Name == "") {
				t.Fatalf("accepted an output event with output %+v, result %+v", ev.Output, ev.Result)
			}
		case task.EventDone:
			if ev.Result != nil || ev.Output != nil || ev.Batch != nil {
				t.Fatal("accepted a done event with a result, output or batch")
			}
		case task.EventBatch:
			b := ev.Batch
			if b == nil || ev.Result != nil || ev.Output != nil || ev.End != nil || b.Index < 1 || b.Index > b.Count || b.Hosts < 1 || (b.Confirm && !b.Paused) {
				t.Fatalf("accepted a batch event %+v (result %v, output %v)", b, ev.Result, ev.Output)
			}
		default:
			t.Fatalf("accepted event type %q", ev.Type)
		}
	})
}

// FuzzDecodeCatalog feeds the web tier's catalog decoder (what follows a
// successful Open) arbitrary bytes: it must never panic, and whatever it
// accepts has unique positive ids, names, versions and JSON schemas.
func FuzzDecodeCatalog(f *testing.F) {
	for _, s := range []string{
		`{"modules":[{"id":1003,"name":"查看系统版本","caption":"os-release","params":[],"version":"ab12"}]}`,
		`{"modules":[{"id":1,"name":"a","params":[{"name":"sys_param_1","type":"number","min":1}],"version":"v"},{"id":2,"name":"b","params":{},"version":"v"}]}`,
		`{"modules":[{"id":1,"name":"a","params":[],"version":"v"},{"id":1,"name":"b","params":[],"version":"v"}]}`,
		`{"modules":[{"id":-1,"name":"a","params":[],"version":"v"}]}`,
		`{"modules":[]} trailing`,
		`{"modules":null}`,
		`{"modules":[{"id":1}],"extra":true}`,
		``,
		"\x00\xff{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mods, err := decodeCatalog(data)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, m := range mods {
			if m.ID <= 0 || seen[m.ID] || m.Name == "" || m.Version == "" || !json.Valid(m.Params) {
				t.Fatalf("accepted a bad module %+v", m)
			}
			seen[m.ID] = true
		}
	})
}
