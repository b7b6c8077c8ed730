package peerbench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

// BenchmarkFanoutPeers runs module 1003 (view OS version) on 100 and 500
// loopback hosts (addresses 127.0.x.y, all answered by one real sshd, the
// omstest account) with five clients, side by side and interleaved:
//
//   - floor: fanfloor, a minimal golang.org/x/crypto/ssh client;
//   - master: fanmaster, the product's master and ssh backend, forks 100
//     and 50, and a warm repeat with the connection pool;
//   - ansible -f 50 and parallel-ssh -p 100.
//
// Each client is its own process: its wall time, its CPU (user + system,
// its reaped children included) and its peak RSS are the kernel's
// accounting of that process. Then a 5,000-host run of the master alone,
// for its RSS. The figures go, as markdown, to the file named by
// FANOUT_REPORT (scripts/bench.sh writes them into docs/BENCHMARKS.md).
//
// sshd must answer at hundreds of addresses, which it can only do by
// listening on the wildcard address: the benchmark runs in a network
// namespace with only loopback (scripts/bench.sh starts it under
// unshare -n) and skips elsewhere. Tunables: FANOUT_SIZES (100,500),
// FANOUT_REPS (3), FANOUT_PEER_REPS (repetitions that include ansible and
// parallel-ssh, which take minutes at 500 hosts; 1), FANOUT_BIG (5000; 0
// skips), FANOUT_BIN (directory of prebuilt fanfloor and fanmaster; built
// when unset).
func BenchmarkFanoutPeers(b *testing.B) {
	if !sshdtest.IsolatedLoopback() {
		b.Skip("needs a network namespace with only loopback: run it with `make bench` (unshare -n)")
	}
	report := os.Getenv("FANOUT_REPORT")
	sizes := envInts(b, "FANOUT_SIZES", []int{100, 500})
	reps := envInts(b, "FANOUT_REPS", []int{3})[0]
	peerReps := envInts(b, "FANOUT_PEER_REPS", []int{1})[0]
	big := envInts(b, "FANOUT_BIG", []int{5000})[0]

	bin := os.Getenv("FANOUT_BIN")
	if bin == "" {
		bin = b.TempDir()
		for _, c := range []string{"fanfloor", "fanmaster"} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, c), "./"+c).CombinedOutput(); err != nil {
				b.Fatalf("build %s: %v\n%s", c, err, out)
			}
		}
	}
	srv := sshdtest.Start(b, sshdtest.WithEveryLoopbackAddress())
	spec, err := module.LoadFile("../../modules/Mid_1003.yaml")
	if err != nil {
		b.Fatal(err)
	}
	steps, err := spec.Expand(nil)
	if err != nil || len(steps) != 1 {
		b.Fatalf("module 1003 expands to %d steps: %v", len(steps), err)
	}
	env := &fanoutEnv{b: b, srv: srv, bin: bin, dir: b.TempDir(), command: steps[0].Command}

	var md bytes.Buffer
	fmt.Fprintf(&md, "Module 1003 on loopback hosts 127.0.x.y, one OpenSSH sshd (%s) answering at every address, account %s; each client a process of its own; medians of %d interleaved repetitions (ansible and parallel-ssh: %d). Wall, CPU and peak RSS are the kernel's accounting of the client process (children included), except the pool rows: the first and the repeat run inside one process, each timed by the process itself.\n\n",
		sshdVersion(), srv.User, reps, min(peerReps, reps))
	md.WriteString("| hosts | client | wall s | wall vs floor | client CPU ms/host | CPU vs floor | peak RSS MB |\n")
	md.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	var notes []string
	var targets []string
	for _, n := range sizes {
		hosts := env.hostFiles(n)
		sides := env.sides(hosts, n)
		samples := map[string][]sample{}
		for r := 0; r < reps; r++ {
			for _, s := range sides {
				if s.peer && r >= peerReps {
					continue
				}
				samples[s.name] = append(samples[s.name], env.run(s, n))
			}
		}
		floor := median(samples["floor"])
		for _, s := range sides {
			if len(samples[s.name]) == 0 {
				continue
			}
			m := median(samples[s.name])
			fmt.Fprintf(&md, "| %d | %s | %.2f | %.2fx | %.2f | %.2fx | %.1f |\n", n, s.name, m.wall.Seconds(),
				m.wall.Seconds()/floor.wall.Seconds(), perHost(m.cpu, n), perHost(m.cpu, n)/perHost(floor.cpu, n), float64(m.rssKB)/1024)
			if m.repeatWall > 0 {
				fmt.Fprintf(&md, "| %d | %s, repeat run | %.2f | %.2fx | %.2f | %.2fx | |\n", n, s.name, m.repeatWall.Seconds(),
					m.repeatWall.Seconds()/floor.wall.Seconds(), perHost(m.repeatCPU, n), perHost(m.repeatCPU, n)/perHost(floor.cpu, n))
			}
			b.ReportMetric(m.wall.Seconds()/floor.wall.Seconds(), fmt.Sprintf("wall-x-floor/%s/%d", strings.ReplaceAll(s.name, " ", "_"), n))
		}
		if n == 500 {
			m, w := median(samples["master forks 100"]), median(samples["master forks 100, pool"])
			targets = append(targets,
				fmt.Sprintf("500 hosts, master wall time vs the floor: %.2fx (target at most 1.10x)", m.wall.Seconds()/floor.wall.Seconds()),
				fmt.Sprintf("500 hosts, master client CPU per host vs the floor: %.2fx (target at most 1.2x)", perHost(m.cpu, n)/perHost(floor.cpu, n)),
				fmt.Sprintf("500 hosts, master peak RSS with forks 100: %.1f MB (target at most 32 MB)", float64(m.rssKB)/1024),
				fmt.Sprintf("500 hosts, warm repeat (pool) wall time vs the floor: %.2fx (target at most 0.25x)", w.repeatWall.Seconds()/floor.wall.Seconds()))
		}
		f100, f50 := median(samples["master forks 100"]), median(samples["master forks 50"])
		notes = append(notes, fmt.Sprintf("%d hosts: master forks 100 %.2f s, forks 50 %.2f s (forks 50 takes %.2fx the time of forks 100); peak RSS %.1f MB vs %.1f MB.",
			n, f100.wall.Seconds(), f50.wall.Seconds(), f50.wall.Seconds()/f100.wall.Seconds(), float64(f100.rssKB)/1024, float64(f50.rssKB)/1024))
	}
	if big > 0 {
		hosts := env.hostFiles(big)
		s := env.run(side{name: "master forks 100", cmd: env.masterCmd(hosts, 100, 1, "0")}, big)
		fmt.Fprintf(&md, "| %d | master forks 100 (alone) | %.2f | | %.2f | | %.1f |\n", big, s.wall.Seconds(), perHost(s.cpu, big), float64(s.rssKB)/1024)
		b.ReportMetric(float64(s.rssKB)/1024, fmt.Sprintf("peak-MB/master/%d", big))
		targets = append(targets, fmt.Sprintf("%d hosts, master peak RSS with forks 100: %.1f MB (target at most 128 MB at 5,000)", big, float64(s.rssKB)/1024))
	}
	md.WriteString("\n")
	for _, n := range notes {
		md.WriteString("- " + n + "\n")
	}
	if len(targets) > 0 {
		md.WriteString("\nAgainst the targets of issue 8 (benchmarks, not pass/fail tests):\n\n")
		for _, t := range targets {
			md.WriteString("- " + t + "\n")
		}
	}
	md.WriteString("\nThe clients, exactly (paths shortened; `$H` is the host list, `$KH` a known_hosts file listing every host of the run, `$K` the omstest key, `$P` sshd's port, `$N` the number of hosts, `$CMD` module 1003's command):\n\n```\n")
	for _, s := range env.sides("$H", 0) {
		md.WriteString(env.shown(s.cmd) + "\n")
	}
	md.WriteString("```\n\nansible ran with this ansible.cfg (ANSIBLE_CONFIG) and an inventory of the hosts with `ansible_port=$P ansible_user=omstest ansible_ssh_private_key_file=$K`:\n\n```\n" + env.ansibleCfg("$KH") + "```\n")
	if report != "" {
		if err := os.WriteFile(report, md.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Log("\n" + md.String())
}

// fanoutEnv is one benchmark's sshd, binaries and scratch directory.
type fanoutEnv struct {
	b       *testing.B
	srv     *sshdtest.Server
	bin     string
	dir     string
	command string
}

// side is one client of the comparison.
type side struct {
	name string
	cmd  []string
	env  []string
	peer bool // another tool: run in the first FANOUT_PEER_REPS repetitions only
}

// sample is one client's run.
type sample struct {
	wall, cpu             time.Duration
	rssKB                 int64
	repeatWall, repeatCPU time.Duration // the second run, for the pooled master
}

// hostFiles writes the host list of n hosts and a known_hosts file listing
// each of them (as a fleet's known_hosts does), and returns the list's path.
func (e *fanoutEnv) hostFiles(n int) string {
	var hosts, kh strings.Builder
	for i := 0; i < n; i++ {
		a := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
		hosts.WriteString(a + "\n")
		kh.WriteString(knownhosts.Line([]string{fmt.Sprintf("%s:%d", a, e.srv.Port)}, e.srv.HostKey) + "\n")
	}
	path := filepath.Join(e.dir, fmt.Sprintf("hosts-%d", n))
	e.write(path, hosts.String())
	e.write(path+".known_hosts", kh.String())
	inv := "[all]\n" + hosts.String() + fmt.Sprintf("\n[all:vars]\nansible_port=%d\nansible_user=%s\nansible_ssh_private_key_file=%s\n", e.srv.Port, e.srv.User, e.srv.KeyFile)
	e.write(path+".inventory", inv)
	e.write(path+".ansible.cfg", e.ansibleCfg(path+".known_hosts"))
	return path
}

func (e *fanoutEnv) write(path, data string) {
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		e.b.Fatal(err)
	}
}

// ansibleCfg keeps ansible's defaults but for strict host key checking
// against the run's known_hosts and no ssh connection sharing (a
// ControlPersist master would outlive ansible and its measurement).
func (e *fanoutEnv) ansibleCfg(kh string) string {
	return "[defaults]\nhost_key_checking = True\n\n[ssh_connection]\nssh_args = -o ControlMaster=no -o ControlPath=none -o UserKnownHostsFile=" + kh + " -o StrictHostKeyChecking=yes\n"
}

// masterCmd runs fanmaster; pool is the pool's bound ("0": no pool).
func (e *fanoutEnv) masterCmd(hosts string, forks, runs int, pool string) []string {
	return []string{filepath.Join(e.bin, "fanmaster"), "-hosts", hosts, "-port", strconv.Itoa(e.srv.Port), "-user", e.srv.User,
		"-key", e.srv.KeyFile, "-known-hosts", hosts + ".known_hosts", "-forks", strconv.Itoa(forks),
		"-modules", "../../modules", "-module", "1003", "-runs", strconv.Itoa(runs), "-pool", pool}
}

// sides are the clients for hosts (n of them; 0 to show the commands), in
// the order they run.
func (e *fanoutEnv) sides(hosts string, n int) []side {
	p := strconv.Itoa(e.srv.Port)
	poolBound := strconv.Itoa(n) // room for every host
	if n == 0 {
		poolBound = "$N"
	}
	return []side{
		{name: "floor", cmd: []string{filepath.Join(e.bin, "fanfloor"), "-hosts", hosts, "-port", p, "-user", e.srv.User,
			"-key", e.srv.KeyFile, "-known-hosts", hosts + ".known_hosts", "-forks", "100", "-command", e.command}},
		{name: "master forks 100", cmd: e.masterCmd(hosts, 100, 1, "0")},
		{name: "ansible -f 50", cmd: []string{"ansible", "all", "-i", hosts + ".inventory", "-f", "50", "-m", "shell", "-a", e.command},
			env: []string{"ANSIBLE_CONFIG=" + hosts + ".ansible.cfg", "ANSIBLE_HOME=" + filepath.Join(e.dir, "ansible-home")}, peer: true},
		{name: "parallel-ssh -p 100", cmd: []string{"parallel-ssh", "-h", hosts, "-p", "100", "-l", e.srv.User, "-t", "120",
			"-O", "Port=" + p, "-O", "IdentityFile=" + e.srv.KeyFile, "-O", "UserKnownHostsFile=" + hosts + ".known_hosts",
			"-O", "StrictHostKeyChecking=yes", "-O", "BatchMode=yes", e.command}, peer: true},
		{name: "master forks 50", cmd: e.masterCmd(hosts, 50, 1, "0")},
		{name: "master forks 100, pool", cmd: e.masterCmd(hosts, 100, 2, poolBound)},
	}
}

var (
	masterLine = regexp.MustCompile(`(?m)^run (\d+) ok (\d+) failed (\d+) wall_ms (\d+) cpu_ms (\d+)$`)
	floorLine  = regexp.MustCompile(`(?m)^ok (\d+) failed (\d+) wall_ms \d+$`)
)

// run starts one client, checks every host succeeded, and returns the
// kernel's accounting of it.
func (e *fanoutEnv) run(s side, n int) sample {
	c := exec.Command(s.cmd[0], s.cmd[1:]...)
	c.Env = append(os.Environ(), s.env...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	if err != nil {
		e.b.Fatalf("%s on %d hosts: %v\n%s", s.name, n, err, tail(errOut.String()+out.String()))
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	smp := sample{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rssKB: ru.Maxrss}
	ok := 0
	switch {
	case strings.HasPrefix(s.name, "floor"):
		if m := floorLine.FindStringSubmatch(out.String()); m != nil {
			ok, _ = strconv.Atoi(m[1])
		}
	case strings.HasPrefix(s.name, "master"):
		runs := masterLine.FindAllStringSubmatch(out.String(), -1)
		for _, m := range runs {
			ok, _ = strconv.Atoi(m[2])
			w, _ := strconv.Atoi(m[4])
			c, _ := strconv.Atoi(m[5])
			wall, cpu := time.Duration(w)*time.Millisecond, time.Duration(c)*time.Millisecond
			switch {
			case len(runs) == 1:
			case m[1] == "1":
				smp.wall, smp.cpu = wall, cpu
			case m[1] == "2":
				smp.repeatWall, smp.repeatCPU = wall, cpu
			}
		}
	case strings.HasPrefix(s.name, "ansible"):
		ok = strings.Count(out.String(), " | CHANGED | rc=0")
	case strings.HasPrefix(s.name, "parallel-ssh"):
		ok = strings.Count(out.String(), "[SUCCESS]")
	}
	if ok != n {
		e.b.Fatalf("%s: %d of %d hosts ok\n%s", s.name, ok, n, tail(errOut.String()+out.String()))
	}
	return smp
}

// shown is a client's command line with this run's paths shortened.
func (e *fanoutEnv) shown(cmd []string) string {
	var parts []string
	for _, a := range cmd {
		a = strings.ReplaceAll(a, "$H.known_hosts", "$KH")
		a = strings.ReplaceAll(a, e.srv.KeyFile, "$K")
		a = strings.ReplaceAll(a, strconv.Itoa(e.srv.Port), "$P")
		a = strings.ReplaceAll(a, e.bin+"/", "")
		if a == e.command {
			a = "\"$CMD\""
		}
		if a == "-pool" || strings.HasPrefix(a, "-") || !strings.ContainsAny(a, " \t") {
			parts = append(parts, a)
			continue
		}
		parts = append(parts, strconv.Quote(a))
	}
	return strings.Join(parts, " ")
}

func median(s []sample) sample {
	pick := func(f func(sample) int64) int64 {
		v := make([]int64, len(s))
		for i, x := range s {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return sample{
		wall:       time.Duration(pick(func(x sample) int64 { return int64(x.wall) })),
		cpu:        time.Duration(pick(func(x sample) int64 { return int64(x.cpu) })),
		rssKB:      pick(func(x sample) int64 { return x.rssKB }),
		repeatWall: time.Duration(pick(func(x sample) int64 { return int64(x.repeatWall) })),
		repeatCPU:  time.Duration(pick(func(x sample) int64 { return int64(x.repeatCPU) })),
	}
}

func perHost(d time.Duration, n int) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }

func envInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			b.Fatalf("%s=%q: want comma-separated counts", name, v)
		}
		out = append(out, n)
	}
	return out
}

func sshdVersion() string {
	out, _ := exec.Command(sshdtest.SSHDPath, "-V").CombinedOutput()
	return strings.TrimSpace(strings.SplitN(string(out), ",", 2)[0])
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
