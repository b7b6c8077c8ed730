package funcrpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/copysrc"
	"github.com/omserver/omserver-go/internal/task"
)

// Connect implements backend.Connector. It prepares the host's HTTPS
// client and contacts nothing: funcd is reached by each step's call.
func (b *Backend) Connect(_ context.Context, host task.Host, opts backend.Options) (backend.Session, error) {
	addr, identity, err := b.address(host)
	if err != nil {
		return nil, backend.WithStatus(task.StatusFailed, err)
	}
	client := b.client(identity, opts.ConnectTimeoutOr(DefaultConnectTimeout))
	return &minionSession{call: &call{b: b, client: client, url: "https://" + addr + "/"}}, nil
}

// CheckStep implements backend.StepChecker: XML 1.0 cannot carry some
// characters, and the encoder would silently replace them.
func (b *Backend) CheckStep(s backend.Step) error {
	if err := xmlText(s.Command); err != nil {
		return fmt.Errorf("command %w", err)
	}
	if s.Copy != nil {
		if err := xmlText(s.Copy.Dest); err != nil {
			return fmt.Errorf("copy destination %w", err)
		}
	}
	return nil
}

// minionSession runs one host's steps, one XML-RPC call each, over one
// HTTPS client (the steps share its connection).
type minionSession struct {
	call *call
}

func (s *minionSession) Close() error {
	s.call.client.CloseIdleConnections()
	return nil
}

func (s *minionSession) Copy(ctx context.Context, c *backend.Copy) error {
	data, err := copysrc.Read(c.Src, MaxCopyBytes)
	if err != nil {
		return err
	}
	v, err := s.call.do(ctx, "copyfile.copyfile", c.Dest, xmlrpc.Base64(base64.StdEncoding.EncodeToString(data)), int(c.Mode.Perm()), 0, 0)
	if err != nil {
		return callError(err)
	}
	return copyResult(v)
}

func (s *minionSession) Command(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	wrapped, remoteSecs := wrapTimeout(ctx, command)
	v, err := s.call.do(ctx, "command.run", wrapped)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			// funcd offers no way to stop a running call (package doc).
			return -1, fmt.Errorf("%v; funcd cannot stop the command, which its %d s timeout on the minion ends", err, remoteSecs)
		}
		return -1, callError(err)
	}
	code, out, errOut, err := runResult(v)
	if err != nil {
		return -1, err
	}
	_, _ = stdout.Write(out)
	_, _ = stderr.Write(errOut)
	return code, nil
}

// callError marks a call that never reached the minion unreachable.
func callError(err error) error {
	if errors.Is(err, errUnreachable) {
		return backend.WithStatus(task.StatusUnreachable, err)
	}
	return err
}

// wrapTimeout bounds the remote command by the run's remaining time and
// returns that time in seconds.
func wrapTimeout(ctx context.Context, command string) (string, int64) {
	secs := int64(DefaultTimeout / time.Second)
	if dl, ok := ctx.Deadline(); ok {
		secs = int64(math.Ceil(time.Until(dl).Seconds()))
		if secs < 1 {
			secs = 1
		}
	}
	return fmt.Sprintf("timeout -k %d %d /bin/sh -c %s", killGrace, secs, backend.ShellQuote(command)), secs
}

// xmlText refuses what XML 1.0 cannot carry (invalid UTF-8, most control
// characters): the encoder would silently replace it, changing the command.
func xmlText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000 {
			continue
		}
		return fmt.Errorf("holds the character %U, which XML-RPC cannot carry", r)
	}
	return nil
}

// remoteError recognises funcd's ["REMOTE_ERROR", type, value, traceback].
func remoteError(v any) error {
	l, ok := v.([]any)
	if !ok || len(l) == 0 || l[0] != "REMOTE_ERROR" {
		return nil
	}
	parts := make([]string, 0, 2)
	for _, x := range l[1:min(len(l), 3)] {
		if s, ok := x.(string); ok && s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return errors.New("minion raised an error without a message")
	}
	return fmt.Errorf("minion raised %s", truncate(strings.Join(parts, ": ")))
}

func copyResult(v any) error {
	if err := remoteError(v); err != nil {
		return err
	}
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("copyfile answered %T, want an integer", v)
	}
	switch n {
	case 1, 0:
		return nil
	case -1:
		return errors.New("the minion could not write the file (copyfile returned -1)")
	}
	return fmt.Errorf("copyfile answered %d, want 1, 0 or -1", n)
}

// runResult checks command.run's [exit code, stdout, stderr].
func runResult(v any) (code int, stdout, stderr []byte, err error) {
	if err := remoteError(v); err != nil {
		return -1, nil, nil, err
	}
	l, ok := v.([]any)
	if !ok || len(l) != 3 {
		return -1, nil, nil, fmt.Errorf("command.run answered %s, want [exit code, stdout, stderr]", describe(v))
	}
	n, ok := l[0].(int64)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return -1, nil, nil, fmt.Errorf("command.run exit code is %s, want an integer", describe(l[0]))
	}
	if stdout, ok = asBytes(l[1]); !ok {
		return -1, nil, nil, fmt.Errorf("command.run stdout is %s, want a string", describe(l[1]))
	}
	if stderr, ok = asBytes(l[2]); !ok {
		return -1, nil, nil, fmt.Errorf("command.run stderr is %s, want a string", describe(l[2]))
	}
	return int(n), stdout, stderr, nil
}

func asBytes(v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	}
	return nil, false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	case map[string]any:
		return "a struct"
	}
	return fmt.Sprintf("%T", v)
}
