package funcrpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/kolo/xmlrpc"

	"github.com/omserver/omserver-go/internal/backend"
)

// errUnreachable marks failures before the minion got the call: refused or
// timed-out connections and TLS failures.
var errUnreachable = errors.New("minion unreachable")

// call posts XML-RPC calls to one minion over its HTTPS client.
type call struct {
	b      *Backend
	client *http.Client
	url    string
}

// do posts one XML-RPC call and decodes its answer.
func (c *call) do(ctx context.Context, method string, params ...any) (any, error) {
	body, err := xmlrpc.EncodeMethodCall(method, params...)
	if err != nil {
		return nil, fmt.Errorf("encoding %s call: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building %s call: %w", method, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "omserver-go funcrpc")
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s stopped: %w", method, ctx.Err())
		}
		return nil, classify(err)
	}
	defer resp.Body.Close()
	data, err := backend.ReadBody(resp.Body, c.b.cfg.MaxResponseBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s stopped: %w", method, ctx.Err())
		}
		return nil, fmt.Errorf("reading %s answer: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: minion answered HTTP %d", method, resp.StatusCode)
	}
	v, fault, err := decodeResponse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if fault != nil {
		return nil, fmt.Errorf("%s: %w", method, fault)
	}
	return v, nil
}

// classify turns a transport error into a message, marking the ones that
// mean the call never reached the minion: a failed dial, and TLS failures
// on either side (a refused client certificate arrives as a "remote error"
// alert, in TLS 1.3 only once the request is written).
func classify(err error) error {
	var (
		opErr   *net.OpError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
	)
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	switch {
	case errors.Is(err, errMinionIdentity), errors.As(err, &recErr), errors.As(err, &certErr),
		errors.As(err, &opErr) && opErr.Op == "remote error":
		return fmt.Errorf("%w: TLS: %v", errUnreachable, inner)
	case errors.As(err, &opErr) && opErr.Op == "dial",
		strings.Contains(err.Error(), "TLS handshake timeout"):
		return fmt.Errorf("%w: %v", errUnreachable, inner)
	}
	return fmt.Errorf("connection lost during the call (the command may have run): %v", inner)
}
