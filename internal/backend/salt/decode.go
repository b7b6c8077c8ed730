package salt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/omserver/omserver-go/internal/task"
)

// decodeReturn checks a rest_cherrypy answer, {"return": [{minion: result, ...}]},
// and returns its first (for one lowstate chunk, only) element.
func decodeReturn(body []byte) (map[string]json.RawMessage, error) {
	var env struct {
		Return []json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("salt-api answer is not the documented JSON {\"return\": [...]}: %w (body starts %q)", err, errorText(body))
	}
	if len(env.Return) == 0 {
		return nil, errors.New(`salt-api answer has no "return" list or an empty one`)
	}
	first := bytes.TrimSpace(env.Return[0])
	if len(first) == 0 || first[0] != '{' {
		return nil, fmt.Errorf("salt-api answer's return[0] is not an object of minion results: %s", errorText(first))
	}
	var byMinion map[string]json.RawMessage
	if err := json.Unmarshal(first, &byMinion); err != nil {
		return nil, fmt.Errorf("salt-api answer's return[0]: %w", err)
	}
	return byMinion, nil
}

// result is one minion's cmd.run_all outcome mapped onto task statuses.
type result struct {
	status         task.Status
	exited         bool // the command ran and exited with retcode
	retcode        int
	stdout, stderr string
	err            string // why, when status is not ok
}

// notReturned is how salt spells a minion that did not answer in time.
const notReturned = "Minion did not return"

// minionResult interprets the minion's entry in a cmd.run_all return.
func minionResult(ret map[string]json.RawMessage, minion string) result {
	raw, ok := ret[minion]
	if !ok {
		return result{status: task.StatusUnreachable, retcode: -1,
			err: fmt.Sprintf("minion %q did not return (not connected, key not accepted, or no answer in time)", minion)}
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return result{status: task.StatusFailed, retcode: -1, err: "empty minion result"}
	case bytes.Equal(raw, []byte("false")), bytes.Equal(raw, []byte("null")):
		return result{status: task.StatusUnreachable, retcode: -1, err: fmt.Sprintf("minion %q did not return", minion)}
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return result{status: task.StatusFailed, retcode: -1, err: fmt.Sprintf("minion result is a malformed string: %v", err)}
		}
		if strings.HasPrefix(s, notReturned) {
			return result{status: task.StatusUnreachable, retcode: -1, err: s}
		}
		// Salt reports a missing function, a bad argument or a minion-side
		// exception as a plain string instead of the run_all dictionary.
		return result{status: task.StatusFailed, retcode: -1, err: "minion answered with an error: " + trimErr(s)}
	case raw[0] != '{':
		return result{status: task.StatusFailed, retcode: -1, err: fmt.Sprintf("minion result is not a cmd.run_all dictionary: %s", errorText(raw))}
	}
	var r struct {
		Retcode *json.Number `json:"retcode"`
		Stdout  *string      `json:"stdout"`
		Stderr  *string      `json:"stderr"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return result{status: task.StatusFailed, retcode: -1, err: fmt.Sprintf("minion result is not a cmd.run_all dictionary: %v", err)}
	}
	if r.Retcode == nil {
		return result{status: task.StatusFailed, retcode: -1, err: "minion result has no retcode"}
	}
	code, err := r.Retcode.Int64()
	if err != nil || code < -1<<31 || code > 1<<31-1 {
		return result{status: task.StatusFailed, retcode: -1, err: fmt.Sprintf("minion result has a non-integer retcode %q", r.Retcode.String())}
	}
	out := result{retcode: int(code), status: task.StatusOK, exited: true}
	if r.Stdout != nil {
		out.stdout = *r.Stdout
	}
	if r.Stderr != nil {
		out.stderr = *r.Stderr
	}
	if code != 0 {
		out.status = task.StatusFailed
		out.err = fmt.Sprintf("exit status %d", code)
	}
	return out
}

// trimErr keeps a minion's error string (often a traceback) to a readable size.
func trimErr(s string) string {
	const max = 500
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
