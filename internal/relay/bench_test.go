package relay

import (
	"fmt"
	"testing"

	"github.com/omserver/omserver-go/internal/task"
)

// BenchmarkRelayRun measures one Run of 100 hosts over loopback TLS with an
// executor that answers instantly: the relay's own cost (sealing, gRPC,
// opening) per run, for each cipher scheme.
func BenchmarkRelayRun(b *testing.B) {
	p := newPKI(b)
	ips := make([]string, 100)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.1.%d", i+1)
	}
	hs := hosts(ips...)
	for _, scheme := range schemes {
		b.Run(scheme, func(b *testing.B) {
			addr := startServer(b, serverConfig(p, scheme), newFakeExec(instantRun))
			c := newTestClient(b, clientConfig(p, scheme, addr))
			ctx := testCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				n := 0
				if err := c.Run(ctx, newTask(fmt.Sprintf("bench-%d", i), 1003, hs, nil), onResults(func(task.HostResult) { n++ })); err != nil {
					b.Fatal(err)
				}
				if n != len(hs) {
					b.Fatalf("got %d results", n)
				}
			}
			b.ReportMetric(float64(len(hs)), "hosts/run")
		})
	}
}
