package facts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/ssh"
	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

const sample = `omsfacts=1
hostname=web7
cpu_count=8
cpu_model=Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
load=0.52 0.61 0.70
mem_total_kb=16000000
mem_available_kb=4000000
swap_total_kb=0
swap_free_kb=0
disk=/ 100000 92000 8000
disk=/data 1000000 100000 900000
iface=eth0 52:54:00:12:34:56 up
iface=lo 00:00:00:00:00:00 unknown
addr=lo 127.0.0.1/8
addr=eth0 10.0.0.7/24
addr=eth0 fe80::1/64
os=Debian GNU/Linux 12 (bookworm)
kernel=6.1.0-18-amd64
arch=x86_64
uptime_s=86400
future_key=whatever
`

func TestParse(t *testing.T) {
	f, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUCount != 8 || f.Load != [3]float64{0.52, 0.61, 0.70} || f.MemUsedPct() != 75 || f.UptimeS != 86400 || f.Kernel != "6.1.0-18-amd64" {
		t.Fatalf("facts %+v", f)
	}
	if len(f.Disks) != 2 || f.Disks[0].Mount != "/" || f.Disks[0].UsedPct != 92 || f.Disks[1].UsedPct != 10 {
		t.Fatalf("disks %+v", f.Disks)
	}
	if len(f.Ifaces) != 2 || f.Ifaces[0].Name != "eth0" || len(f.Ifaces[0].Addrs) != 2 || f.Ifaces[1].Addrs[0] != "127.0.0.1/8" {
		t.Fatalf("ifaces %+v", f.Ifaces)
	}
	for _, tt := range []struct{ name, out, want string }{
		{"not facts", "Linux web7 6.1.0\n", "does not start"},
		{"empty", "", "does not start"},
		{"no cpu", "omsfacts=1\nkernel=6.1\n", "cpu_count"},
		{"bad number", "omsfacts=1\ncpu_count=eight\n", "line 2 (cpu_count)"},
		{"bad load", "omsfacts=1\ncpu_count=1\nload=1 2\n", "three numbers"},
		{"relative mount", "omsfacts=1\ncpu_count=1\ndisk=data 1 1 1\n", "absolute"},
		{"negative", "omsfacts=1\ncpu_count=1\nmem_total_kb=-5\n", "not a count"},
		{"no equals", "omsfacts=1\ncpu_count=1\ngarbage\n", "key=value"},
		{"long value", "omsfacts=1\ncpu_count=1\nos=" + strings.Repeat("x", 600) + "\n", "longer"},
	} {
		if _, err := Parse(tt.out); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("omsfacts=1\ncpu_count=1\n")
	f.Add("omsfacts=1\ncpu_count=1\naddr=eth9: 10.0.0.1/8\n")
	f.Fuzz(func(t *testing.T, out string) {
		facts, err := Parse(out)
		if err != nil {
			return
		}
		if facts.CPUCount < 1 || len(facts.Disks) > maxDisks || len(facts.Ifaces) > maxIfaces {
			t.Fatalf("accepted out of range facts %+v", facts)
		}
		for _, d := range facts.Disks {
			if d.UsedPct < 0 || d.UsedPct > 100.0001 && d.UsedKB <= d.UsedKB+d.AvailKB {
				t.Fatalf("disk %+v", d)
			}
		}
	})
}

// The shipped module over a real sshd on loopback: its output parses, and
// says what this machine says about itself.
func TestModuleOverSSH(t *testing.T) {
	srv := sshdtest.Start(t)
	be, err := ssh.New(ssh.Config{User: srv.User, Port: srv.Port, IdentityFiles: []string{srv.KeyFile}, KnownHostsFile: srv.KnownHostsFile}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	spec, err := module.LoadFile(filepath.Join("..", "..", "modules", "Mid_1008.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := spec.Expand(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := be.Run(ctx, task.Host{IP: "127.0.0.1", Name: "localhost"}, steps, backend.Options{Timeout: 30 * time.Second})
	if r.Status != task.StatusOK {
		t.Fatalf("module 1008 over ssh: %s %s %q", r.Status, r.Error, r.Stderr)
	}
	f, err := Parse(r.Stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	if f.Kernel != strings.TrimSpace(string(kernel)) {
		t.Errorf("kernel %q, uname -r says %q", f.Kernel, kernel)
	}
	if f.CPUCount < 1 || f.MemTotalKB <= 0 || f.UptimeS <= 0 {
		t.Errorf("facts %+v", f)
	}
	root := false
	for _, d := range f.Disks {
		root = root || (d.Mount == "/" && d.SizeKB > 0)
	}
	lo := false
	for _, i := range f.Ifaces {
		for _, a := range i.Addrs {
			lo = lo || (i.Name == "lo" && a == "127.0.0.1/8")
		}
		lo = lo || i.Name == "lo" && len(i.Addrs) == 0 && !hasIP()
	}
	if !root || !lo {
		t.Errorf("no / disk (%v) or lo interface (%v): %+v", root, lo, f)
	}

	// Stored through the collector and found by a disk filter.
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	run := store.Run{ID: "facts1", ModuleID: DefaultModuleID, ModuleName: "主机信息", Username: "ops",
		Hosts: []task.Host{{IP: "127.0.0.1"}, {IP: "127.0.0.2"}}}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	r.RunID = "facts1"
	if err := st.AddRunResult(ctx, "facts1", r); err != nil {
		t.Fatal(err)
	}
	other := task.HostResult{Host: task.Host{IP: "127.0.0.2"}, Status: task.StatusOK, Stdout: sample}
	if err := st.AddRunResult(ctx, "facts1", other); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, "facts1", task.RunDone, ""); err != nil {
		t.Fatal(err)
	}
	c := NewCollector(0, st, zerolog.Nop())
	info, _ := st.GetRunInfo(ctx, "facts1")
	if stored, bad := c.Collect(ctx, info); stored != 2 || bad != 0 {
		t.Fatalf("collected %d, %d unreadable", stored, bad)
	}
	full, err := st.ListFacts(ctx, store.FactsFilter{Mount: "/", DiskAbove: 90})
	if err != nil || len(full) != 1 || full[0].IP != "127.0.0.2" {
		t.Fatalf("disk / above 90%%: %+v, %v", full, err)
	}
	all, _ := st.ListFacts(ctx, store.FactsFilter{Mount: "/"})
	if len(all) != 2 {
		t.Fatalf("servers with a / disk: %+v", all)
	}
	if mem, _ := st.ListFacts(ctx, store.FactsFilter{MemAbove: 74}); len(mem) < 1 {
		t.Fatal("memory filter found nothing")
	}
	if page, _ := st.ListFacts(ctx, store.FactsFilter{After: "127.0.0.1"}); len(page) != 1 || page[0].IP != "127.0.0.2" {
		t.Fatalf("page after 127.0.0.1: %+v", page)
	}
	if _, err := st.ListFacts(ctx, store.FactsFilter{DiskAbove: 90}); err == nil {
		t.Fatal("a disk threshold without a mount point was accepted")
	}
	// An older run's facts arriving later do not replace newer ones.
	older := store.ServerFacts{IP: "127.0.0.2", RunID: "old", CollectedAt: time.Now().Add(-time.Hour), CPUCount: 1, Facts: "{}"}
	if err := st.SaveFacts(ctx, older, nil); err != nil {
		t.Fatal(err)
	}
	if got, disks, _ := st.GetFacts(ctx, "127.0.0.2"); got.RunID != "facts1" || len(disks) != 2 {
		t.Fatalf("older facts replaced newer: %+v %+v", got, disks)
	}
}

// hasIP reports whether the ip tool exists (the module lists addresses
// with it; without it interfaces come without addresses).
func hasIP() bool {
	for _, d := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}
