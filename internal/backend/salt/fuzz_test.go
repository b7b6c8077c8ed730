package salt

import (
	"testing"

	"github.com/omserver/omserver-go/internal/task"
)

// FuzzDecodeReturn feeds arbitrary salt-api bodies to the answer decoder.
// Seeds (testdata/fuzz/FuzzDecodeReturn) are documented rest_cherrypy
// answers and broken variants of them.
func FuzzDecodeReturn(f *testing.F) {
	f.Add([]byte(`{"return": [{"web1": {"pid": 12, "retcode": 0, "stdout": "ok", "stderr": ""}}]}`), "web1")
	f.Fuzz(func(t *testing.T, body []byte, minion string) {
		ret, err := decodeReturn(body)
		if err != nil {
			if ret != nil {
				t.Fatal("error with a result")
			}
			return
		}
		r := minionResult(ret, minion)
		if !r.status.Valid() {
			t.Fatalf("invalid status %q", r.status)
		}
		if r.status == task.StatusOK && (r.retcode != 0 || r.err != "") {
			t.Fatalf("ok with retcode %d, err %q", r.retcode, r.err)
		}
		if r.status != task.StatusOK && r.err == "" {
			t.Fatalf("status %s without a reason", r.status)
		}
	})
}
