// Command fanmaster runs a module on many hosts through the product's
// master (internal/master with the ssh backend, built as `omserver master`
// builds them) for the fan-out benchmark, one run or several in a row (a
// repeat shows what the warm connection pool saves).
//
//	fanmaster -hosts FILE -port P -user U -key KEY -known-hosts FILE -forks N \
//	          -modules DIR -module ID [-runs N] [-pool MAX_IDLE]
//
// For each run it prints "run I ok N failed M wall_ms W cpu_ms C", the CPU
// being this process's user and system time during the run, and exits 1
// when a host failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/ssh"
	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/peerbench/fanout"
	"github.com/omserver/omserver-go/internal/task"
)

func main() {
	tg := fanout.Flags(flag.CommandLine, master.DefaultForks)
	modules := flag.String("modules", "modules", "module directory")
	moduleID := flag.Int("module", 1003, "module to run")
	runs := flag.Int("runs", 1, "runs in a row")
	pool := flag.Int("pool", 0, "ssh pool: idle connections kept (0: none)")
	flag.Parse()
	if err := run(tg, *modules, *moduleID, *runs, *pool); err != nil {
		fmt.Fprintln(os.Stderr, "fanmaster:", err)
		os.Exit(1)
	}
}

func run(tg *fanout.Target, modules string, moduleID, runs, pool int) error {
	addrs, err := tg.Hosts()
	if err != nil {
		return err
	}
	hosts := make([]task.Host, len(addrs))
	for i, a := range addrs {
		hosts[i] = task.Host{IP: a}
	}
	be, err := ssh.New(ssh.Config{User: tg.User, Port: tg.Port, IdentityFiles: []string{tg.Key}, KnownHostsFile: tg.KnownHosts,
		Pool: ssh.PoolConfig{MaxIdle: pool}}, zerolog.Nop())
	if err != nil {
		return err
	}
	defer be.Close()
	m, err := master.New(master.Config{Forks: tg.Forks, DefaultBackend: "ssh", ConnectTimeout: 30 * time.Second, HostTimeout: 5 * time.Minute},
		modules, map[string]backend.Backend{"ssh": be}, zerolog.Nop())
	if err != nil {
		return err
	}
	failedRuns := 0
	for i := 1; i <= runs; i++ {
		cpu0, start := cpuTime(), time.Now()
		ok, failed := 0, 0
		t := task.Task{RunID: fmt.Sprintf("fanout-%d", i), ModuleID: moduleID, Hosts: hosts, IssuedAt: time.Now(), Nonce: fmt.Sprint(i)}
		err := m.Run(context.Background(), t, func(ev task.Event) {
			if r := ev.Result; r != nil {
				if r.Status == task.StatusOK {
					ok++
				} else {
					failed++
					fmt.Fprintf(os.Stderr, "%s: %s %s\n", r.Host.IP, r.Status, r.Error)
				}
			}
		})
		if err != nil {
			return err
		}
		fmt.Printf("run %d ok %d failed %d wall_ms %d cpu_ms %d\n", i, ok, failed, time.Since(start).Milliseconds(), (cpuTime() - cpu0).Milliseconds())
		if failed > 0 {
			failedRuns++
		}
	}
	if failedRuns > 0 {
		return fmt.Errorf("%d runs had failed hosts", failedRuns)
	}
	return nil
}

// cpuTime is this process's user plus system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
