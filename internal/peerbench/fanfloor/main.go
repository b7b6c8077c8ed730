// Command fanfloor is the floor of the fan-out benchmark: about the least
// a Go program must do to run one command on many hosts over SSH with
// golang.org/x/crypto/ssh, strict host key checking included. known_hosts
// is parsed once; each host gets a dial, a handshake, one session running
// the command, its output read. No retries, no output cap, no watchdog,
// no results beyond a count: what the product does on top costs what it
// costs against this.
//
//	fanfloor -hosts FILE -port P -user U -key KEY -known-hosts FILE -forks N -command CMD
//
// It prints "ok N failed M wall_ms W" and exits 1 when a host failed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/omserver/omserver-go/internal/peerbench/fanout"
)

func main() {
	tg := fanout.Flags(flag.CommandLine, 100)
	command := flag.String("command", "", "command line to run")
	flag.Parse()
	if err := run(tg, *command); err != nil {
		fmt.Fprintln(os.Stderr, "fanfloor:", err)
		os.Exit(1)
	}
}

func run(tg *fanout.Target, command string) error {
	hosts, err := tg.Hosts()
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(tg.Key)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return err
	}
	check, err := knownhosts.New(tg.KnownHosts)
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{User: tg.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: check, Timeout: 30 * time.Second}

	start := time.Now()
	var ok, failed atomic.Int64
	sem := make(chan struct{}, tg.Forks)
	var wg sync.WaitGroup
	for _, h := range hosts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := one(net.JoinHostPort(h, strconv.Itoa(tg.Port)), cfg, command); err != nil {
				failed.Add(1)
				fmt.Fprintf(os.Stderr, "%s: %v\n", h, err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	fmt.Printf("ok %d failed %d wall_ms %d\n", ok.Load(), failed.Load(), time.Since(start).Milliseconds())
	if failed.Load() > 0 {
		return fmt.Errorf("%d hosts failed", failed.Load())
	}
	return nil
}

func one(addr string, cfg *ssh.ClientConfig, command string) error {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	return s.Run(command)
}
