// Package local is the backend that runs module steps on the master's own
// host: for the embedded demo and single-host setups. It refuses every
// target that is not this host, so a mistaken inventory entry can never
// make it run a command meant for another server here.
package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// Name is the backend's name in configuration and module files.
const Name = "local"

// Backend runs steps with /bin/sh on this host: the step runner over a
// session that runs commands here. Output streams as the command prints it.
type Backend struct {
	*backend.Runner
	log zerolog.Logger
	// hostname and addrs identify this host; fields so tests can vary them.
	hostname func() (string, error)
	addrs    func() ([]net.Addr, error)
}

// New returns a local backend.
func New(log zerolog.Logger) *Backend {
	b := &Backend{
		log:      log.With().Str("backend", Name).Logger(),
		hostname: os.Hostname,
		addrs:    net.InterfaceAddrs,
	}
	b.Runner = backend.NewRunner(Name, b, 0)
	return b
}

// Connect implements backend.Connector: it accepts only this host.
func (b *Backend) Connect(_ context.Context, host task.Host, _ backend.Options) (backend.Session, error) {
	if err := b.checkThisHost(host); err != nil {
		b.log.Warn().Str("host", host.String()).Err(err).Msg("refused target")
		return nil, err
	}
	return session{}, nil
}

// session runs steps on this host; it holds nothing.
type session struct{}

func (session) Copy(_ context.Context, c *backend.Copy) error { return copyFile(c) }

func (session) Command(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	return runShell(ctx, command, stdout, stderr)
}

func (session) Close() error { return nil }

// checkThisHost accepts the target only when it is this host: by its IP
// when one is given (a loopback address or an address of one of this
// host's interfaces), else by its name ("localhost" or this hostname).
func (b *Backend) checkThisHost(h task.Host) error {
	refuse := fmt.Errorf("local backend runs only on this host; refusing %s", h)
	if h.IP != "" {
		ip, err := netip.ParseAddr(h.IP)
		if err != nil {
			// Not an address: treat the field as a name.
			if b.isThisName(h.IP) {
				return nil
			}
			return refuse
		}
		ip = ip.WithZone("").Unmap()
		if ip.IsLoopback() {
			return nil
		}
		addrs, err := b.addrs()
		if err != nil {
			return fmt.Errorf("local backend cannot list this host's addresses (%v); refusing %s", err, h)
		}
		for _, a := range addrs {
			var cand net.IP
			switch v := a.(type) {
			case *net.IPNet:
				cand = v.IP
			case *net.IPAddr:
				cand = v.IP
			}
			if c, ok := netip.AddrFromSlice(cand); ok && c.Unmap() == ip {
				return nil
			}
		}
		return refuse
	}
	if b.isThisName(h.Name) {
		return nil
	}
	return refuse
}

func (b *Backend) isThisName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "localhost" {
		return true
	}
	hn, err := b.hostname()
	return err == nil && name != "" && strings.EqualFold(name, strings.TrimSuffix(hn, "."))
}
