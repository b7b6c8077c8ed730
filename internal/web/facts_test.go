package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

func factsOutput(rootUsed string) string {
	return "omsfacts=1\nhostname=h\ncpu_count=4\nload=0.10 0.20 0.30\nmem_total_kb=1000\nmem_available_kb=500\n" +
		"disk=/ 1000 " + rootUsed + " 50\ndisk=/data 1000 10 990\niface=eth0 52:54:00:00:00:01 up\naddr=eth0 10.0.0.1/24\n" +
		"os=Debian GNU/Linux 12 (bookworm)\nkernel=6.1.0\narch=x86_64\nuptime_s=100\n"
}

// A finished run of the facts module stores each ok host's facts; the
// facts page and API filter by them.
func TestFactsFromRun(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.CreateModule(context.Background(), store.Module{ID: 1008, Name: "主机信息", Caption: "facts"}); err != nil {
		t.Fatal(err)
	}
	id := e.startRun("operator", `{"module_id":1008,"hosts":["192.168.1.10","192.168.1.20","192.168.1.21"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, factsOutput("950")))
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusOK, factsOutput("100")))
	call.send(t, result("192.168.1.21", "sn2013-08-021", task.StatusUnreachable, ""))
	call.Finish <- nil
	e.waitStatus(id, task.RunPartial)
	// Facts are stored by an observer told after the run's end is recorded.
	deadline := time.Now().Add(testTimeout)
	for {
		r := e.do(req{method: "GET", path: "/api/v1/facts", as: "viewer"})
		if strings.Contains(r.body, "192.168.1.20") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	full := e.do(req{method: "GET", path: "/api/v1/facts?mount=/&disk_above=90", as: "viewer"}).want(t, http.StatusOK, `"ip":"192.168.1.10"`, `"used_pct":95`)
	if strings.Contains(full.body, "192.168.1.20") {
		t.Fatalf("a server under the threshold matched: %s", full.body)
	}
	e.do(req{method: "GET", path: "/api/v1/facts", as: "viewer"}).want(t, http.StatusOK, "192.168.1.10", "192.168.1.20", `"next_after":null`)
	e.do(req{method: "GET", path: "/api/v1/facts?disk_above=90", as: "viewer"}).want(t, http.StatusBadRequest, "mount point")
	e.do(req{method: "GET", path: "/api/v1/facts?mem_above=abc", as: "viewer"}).want(t, http.StatusBadRequest)
	e.do(req{method: "GET", path: "/api/v1/facts/192.168.1.20", as: "viewer"}).want(t, http.StatusOK, `"mount":"/data"`, `"kernel":"6.1.0"`)
	e.do(req{method: "GET", path: "/api/v1/facts/192.168.1.21", as: "viewer"}).want(t, http.StatusNotFound)
	page := e.do(req{method: "GET", path: "/facts?mount=%2F&disk_above=90", as: "viewer"}).want(t, http.StatusOK, `data-ip="192.168.1.10"`, "/ 95%", "Debian GNU/Linux 12")
	if strings.Contains(page.body, `data-ip="192.168.1.20"`) {
		t.Fatal("the page shows a server under the threshold")
	}
}
