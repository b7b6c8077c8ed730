package salt

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/omserver/omserver-go/internal/backend"
)

// errLoginRefused is the login failure, kept distinct so a run reports it
// as such rather than as a generic HTTP error.
var errLoginRefused = errors.New("salt-api refused login")

// errTokenRejected is a 401 to a call: the token was refused, possibly
// after the job was published (salt's local client polls
// saltutil.find_job with the caller's token while a job runs, and an
// expired token turns that poll into a 401 while the job runs on).
var errTokenRejected = errors.New("salt-api rejected the token")

// errNotSent marks (see notSent) a call that certainly ran nothing: it
// never reached salt-api, or salt-api refused it before running anything.
var errNotSent = errors.New("not sent")

// notSent marks err with errNotSent, keeping its message.
func notSent(err error) error { return notSentError{err} }

type notSentError struct{ err error }

func (e notSentError) Error() string        { return e.err.Error() }
func (e notSentError) Unwrap() error        { return e.err }
func (e notSentError) Is(target error) bool { return target == errNotSent }

// callPolicy says how a call treats a rejected token.
type callPolicy int

const (
	// sendOnce: a 401 is returned, never answered by sending again. For
	// everything that runs a step: the job may have started.
	sendOnce callPolicy = iota
	// resendOn401: log in again and send once more. Only for calls that
	// are harmless twice (killing a tagged process tree).
	resendOn401
)

// call runs one lowstate chunk and returns the "return" member's first
// element. The token it sends lives until need at least (logging in
// first when the cached one would not).
func (b *Backend) call(ctx context.Context, connectTimeout time.Duration, need time.Time, chunk lowstate, policy callPolicy) (map[string]json.RawMessage, error) {
	body, err := json.Marshal([]lowstate{chunk})
	if err != nil {
		return nil, notSent(fmt.Errorf("encoding lowstate: %w", err))
	}
	for {
		token, fresh, err := b.token(ctx, connectTimeout, need)
		if err != nil {
			return nil, notSent(err)
		}
		status, resp, err := b.post(ctx, "/", token, body)
		if err != nil {
			return nil, err
		}
		switch {
		case status == http.StatusUnauthorized:
			b.session.invalidate(token)
			if policy == resendOn401 && !fresh {
				b.log.Info().Msg("salt-api rejected the cached token; logging in again")
				continue
			}
			if fresh {
				return nil, fmt.Errorf("%w (HTTP 401: %s), though it was just issued: check the eauth user may run cmd.run_all on this minion", errTokenRejected, errorText(resp))
			}
			return nil, fmt.Errorf("%w (HTTP 401: %s)", errTokenRejected, errorText(resp))
		case status == http.StatusBadRequest, status == http.StatusNotAcceptable:
			// Refused while reading the request, before anything ran.
			return nil, notSent(fmt.Errorf("salt-api answered HTTP %d %s: %s", status, http.StatusText(status), errorText(resp)))
		case status != http.StatusOK:
			return nil, fmt.Errorf("salt-api answered HTTP %d %s: %s", status, http.StatusText(status), errorText(resp))
		}
		return decodeReturn(resp)
	}
}

// post sends a JSON body to salt-api and returns the status and the body,
// read up to the configured limit. A failure to connect is errNotSent.
func (b *Backend) post(ctx context.Context, p, token string, body []byte) (int, []byte, error) {
	u := b.base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, notSent(fmt.Errorf("building salt-api request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("salt-api request stopped: %w", ctx.Err())
		}
		err = fmt.Errorf("salt-api %s unreachable: %w", b.base.Redacted(), unwrapURLError(err))
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			err = notSent(err)
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := backend.ReadBody(resp.Body, b.cfg.MaxResponseBytes)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("salt-api request stopped: %w", ctx.Err())
		}
		return 0, nil, fmt.Errorf("reading salt-api response: %w", err)
	}
	return resp.StatusCode, data, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// newHTTPClient is the client every call to salt-api goes through: TLS 1.2
// or later, salt-api's CA when one is configured, no proxy from the
// environment, no redirects, and no client-wide timeout (every request
// carries its run's context).
func newHTTPClient(cfg Config) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pool, err := backend.LoadCertPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tlsConf.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:               nil, // salt-api is reached directly, never through an environment proxy
		DialContext:         (&net.Dialer{Timeout: defaultConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: defaultConnectTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: transport, CheckRedirect: noRedirects}, nil
}

// noRedirects keeps the token and password from following a redirect to
// another server.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
