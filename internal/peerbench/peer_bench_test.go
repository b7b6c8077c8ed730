package peerbench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/ansible"
	"github.com/omserver/omserver-go/internal/backend/ssh"
	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

const fanoutHosts = 8

// BenchmarkFanout runs module 1003 (view OS version) through the master on
// eight logical hosts (127.0.0.1-8, one real sshd) with the native SSH
// backend and with the ansible CLI backend, which is how the original
// OMServer reached its hosts. Compare hosts/s of the two sub-benchmarks.
func BenchmarkFanout(b *testing.B) {
	addrs := make([]string, fanoutHosts)
	hosts := make([]task.Host, fanoutHosts)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.%d", i+1)
		hosts[i] = task.Host{IP: addrs[i], Name: fmt.Sprintf("bench%d", i+1)}
	}
	srv := sshdtest.Start(b, sshdtest.WithListenAddrs(addrs...))

	sshB, err := ssh.New(ssh.Config{User: srv.User, Port: srv.Port, IdentityFiles: []string{srv.KeyFile},
		KnownHostsFile: srv.KnownHostsFile}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ansB, err := ansible.New(ansible.Config{User: srv.User, Port: srv.Port, PrivateKeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, HostKeyChecking: true}, zerolog.Nop())
	if err != nil {
		b.Fatalf("ansible backend (apt-get install ansible-core): %v", err)
	}

	for _, bc := range []struct {
		name string
		be   backend.Backend
	}{{"ssh", sshB}, {"ansible", ansB}} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := master.New(master.Config{Forks: fanoutHosts, DefaultBackend: bc.name, HostTimeout: 2 * time.Minute},
				"../../modules", map[string]backend.Backend{bc.name: bc.be}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				ok := 0
				t := task.Task{RunID: fmt.Sprintf("bench-%s-%d", bc.name, i), ModuleID: 1003, Hosts: hosts,
					IssuedAt: time.Now(), Nonce: fmt.Sprint(i)}
				err := m.Run(context.Background(), t, func(ev task.Event) {
					r := ev.Result
					if r == nil {
						return
					}
					if r.Status == task.StatusOK {
						ok++
					} else {
						b.Errorf("%s on %s: %s %s", bc.name, r.Host.IP, r.Status, r.Error)
					}
				})
				if err != nil || ok != fanoutHosts {
					b.Fatalf("run %d: %d of %d hosts ok, err %v", i, ok, fanoutHosts, err)
				}
			}
			b.ReportMetric(float64(b.N*fanoutHosts)/time.Since(start).Seconds(), "hosts/s")
		})
	}
}
