package ansible

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// callbackOutput is the document the ansible.posix.json stdout callback
// prints once, at the end of the run (v2_playbook_on_stats). Format, from
// the plugin's documentation and source
// (https://docs.ansible.com/ansible/latest/collections/ansible/posix/json_callback.html,
// ansible_collections/ansible/posix/plugins/callback/json.py):
//
//	{"plays": [{"play": {...}, "tasks": [{"task": {...},
//	    "hosts": {"<inventory name>": {<module result>, "action": "shell",
//	                                   "failed": true?, "skipped": true?}}}]}],
//	 "stats": {"<inventory name>": {"ok": n, "failures": n, "unreachable": n, ...}},
//	 "custom_stats": {}, "global_custom_stats": {}}
//
// The callback adds "failed"/"skipped" itself; an unreachable host's result
// carries "unreachable": true and "msg" from the connection plugin. An
// ad-hoc run has one play with one task.
type callbackOutput struct {
	Plays []struct {
		Tasks []struct {
			Hosts map[string]moduleResult `json:"hosts"`
		} `json:"tasks"`
	} `json:"plays"`
	Stats map[string]struct {
		Failures    int `json:"failures"`
		Unreachable int `json:"unreachable"`
	} `json:"stats"`
}

// moduleResult holds the fields we use of one host's module result
// (shell: rc, stdout, stderr, msg; copy: msg; any module that crashed:
// module_stdout, module_stderr).
type moduleResult struct {
	Unreachable  bool            `json:"unreachable"`
	Failed       bool            `json:"failed"`
	Skipped      bool            `json:"skipped"`
	RC           *int            `json:"rc"`
	Stdout       string          `json:"stdout"`
	Stderr       string          `json:"stderr"`
	Msg          json.RawMessage `json:"msg"`
	ModuleStderr string          `json:"module_stderr"`
	ModuleStdout string          `json:"module_stdout"`
}

// message renders msg, which modules set to a string or occasionally to a
// list or object.
func (r moduleResult) message() string {
	if len(r.Msg) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(r.Msg, &s); err == nil {
		return s
	}
	return string(r.Msg)
}

// parseCallback extracts alias's result from the callback document. It
// refuses a document that is not JSON, holds no result for alias, or holds
// more than one (an ad-hoc run is one task on one host).
func parseCallback(out []byte, alias string) (moduleResult, error) {
	// Warnings can precede the document on stdout; it starts at the first
	// line that opens a JSON object.
	start := 0
	if !strings.HasPrefix(string(out), "{") {
		i := strings.Index(string(out), "\n{")
		if i < 0 {
			return moduleResult{}, errors.New("no JSON document in ansible's output")
		}
		start = i + 1
	}
	var doc callbackOutput
	if err := json.Unmarshal(out[start:], &doc); err != nil {
		return moduleResult{}, fmt.Errorf("parsing ansible's JSON output: %w", err)
	}
	var found []moduleResult
	for _, p := range doc.Plays {
		for _, t := range p.Tasks {
			if r, ok := t.Hosts[alias]; ok {
				found = append(found, r)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		// No task result: the stats still say why (e.g. unreachable before
		// the task started).
		if s, ok := doc.Stats[alias]; ok && s.Unreachable > 0 {
			return moduleResult{Unreachable: true, Msg: json.RawMessage(`"host unreachable"`)}, nil
		}
		return moduleResult{}, fmt.Errorf("ansible's output holds no result for host %q", alias)
	default:
		return moduleResult{}, fmt.Errorf("ansible's output holds %d results for host %q, want 1", len(found), alias)
	}
}
