// Package fanout holds what the fan-out benchmark's two Go clients
// (fanfloor, fanmaster) share: the flags that name their targets, and
// reading the host list (one address a line, blank lines skipped).
package fanout

import (
	"bufio"
	"flag"
	"os"
	"strings"
)

// Target is where a client logs in and how many hosts it works on at once.
type Target struct {
	HostsFile  string
	Port       int
	User       string
	Key        string // private key file
	KnownHosts string
	Forks      int
}

// Flags registers the target's flags on fs.
func Flags(fs *flag.FlagSet, defaultForks int) *Target {
	t := &Target{}
	fs.StringVar(&t.HostsFile, "hosts", "", "file of host addresses, one a line")
	fs.IntVar(&t.Port, "port", 22, "ssh port")
	fs.StringVar(&t.User, "user", "root", "login user")
	fs.StringVar(&t.Key, "key", "", "private key file")
	fs.StringVar(&t.KnownHosts, "known-hosts", "", "known_hosts file")
	fs.IntVar(&t.Forks, "forks", defaultForks, "hosts at once")
	return t
}

// Hosts returns the addresses listed in the hosts file.
func (t *Target) Hosts() ([]string, error) { return Read(t.HostsFile) }

// Read returns the addresses listed in path.
func Read(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
