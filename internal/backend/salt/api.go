package salt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errLoginRefused is the login failure, kept distinct so a run reports it
// as such rather than as a generic HTTP error.
var errLoginRefused = errors.New("salt-api refused login")

// call runs one lowstate chunk and returns the "return" member's first
// element, logging in first when needed and once more on a 401.
func (b *Backend) call(ctx context.Context, connectTimeout time.Duration, chunk lowstate) (map[string]json.RawMessage, error) {
	body, err := json.Marshal([]lowstate{chunk})
	if err != nil {
		return nil, fmt.Errorf("encoding lowstate: %w", err)
	}
	for attempt := 0; ; attempt++ {
		token, err := b.token(ctx, connectTimeout)
		if err != nil {
			return nil, err
		}
		status, resp, err := b.post(ctx, "/", token, body)
		if err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized {
			b.session.invalidate(token)
			if attempt == 0 {
				b.log.Info().Msg("salt-api rejected the cached token; logging in again")
				continue
			}
			return nil, fmt.Errorf("%w: a fresh token was rejected too (HTTP 401; check the eauth user may run cmd.run_all on this minion)", errLoginRefused)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("salt-api answered HTTP %d: %s", status, snippet(resp))
		}
		ret, err := decodeReturn(resp)
		if err != nil {
			return nil, err
		}
		return ret, nil
	}
}

// post sends a JSON body to salt-api and returns the status and the body,
// read up to the configured limit.
func (b *Backend) post(ctx context.Context, p, token string, body []byte) (int, []byte, error) {
	u := b.base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("building salt-api request: %w", err)
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
		return 0, nil, fmt.Errorf("salt-api %s unreachable: %w", b.base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, b.cfg.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("salt-api request stopped: %w", ctx.Err())
		}
		return 0, nil, fmt.Errorf("reading salt-api response: %w", err)
	}
	if int64(len(data)) > b.cfg.MaxResponseBytes {
		return 0, nil, fmt.Errorf("salt-api response is larger than the limit of %d bytes", b.cfg.MaxResponseBytes)
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

// snippet is the start of a response body, for error messages.
func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
