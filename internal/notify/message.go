package notify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Message is one notification: the JSON body of a webhook, and what robot
// and mail texts are written from. Its JSON names are a contract with the
// receivers of webhooks (documented in README.md).
type Message struct {
	Event      string              `json:"event"`
	RunID      string              `json:"run_id,omitempty"`
	ModuleID   int64               `json:"module_id,omitempty"`
	ModuleName string              `json:"module_name,omitempty"`
	User       string              `json:"user,omitempty"`
	Status     string              `json:"status,omitempty"`
	Error      string              `json:"error,omitempty"`
	Detail     string              `json:"detail,omitempty"` // what a paused run waits for
	Hosts      int                 `json:"hosts,omitempty"`
	Summary    map[task.Status]int `json:"summary,omitempty"` // hosts per status
	URL        string              `json:"url,omitempty"`     // the run's page
	At         time.Time           `json:"at"`
}

// headline says in a few words what happened, in the operators' two
// languages.
func (m Message) headline() string {
	switch m.Event {
	case EventFinished:
		return "运行完成 run finished"
	case EventFailed:
		return "运行失败 run failed"
	case EventPaused:
		return "等待确认 run waits for confirmation"
	case EventTest:
		return "测试消息 test message"
	}
	return m.Event
}

// Subject is a one-line title (mail subject, markdown title).
func (m Message) Subject() string {
	s := "[OMServer] " + m.headline()
	if m.ModuleName != "" {
		s += ": " + m.ModuleName
	}
	return oneLine(s, 200)
}

// Text is the message as plain text lines.
func (m Message) Text() string {
	var b strings.Builder
	b.WriteString(m.Subject() + "\n")
	line := func(label, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", label, oneLine(v, 500))
		}
	}
	line("运行 run", m.RunID)
	if m.ModuleID > 0 {
		line("模块 module", fmt.Sprintf("%d %s", m.ModuleID, m.ModuleName))
	}
	line("用户 user", m.User)
	line("状态 status", m.Status)
	if m.Hosts > 0 {
		line("主机 hosts", fmt.Sprintf("%d (%s)", m.Hosts, summaryText(m.Summary)))
	}
	line("等待 waiting for", m.Detail)
	line("错误 error", m.Error)
	line("链接 link", m.URL)
	line("时间 time", m.At.UTC().Format("2006-01-02 15:04:05 UTC"))
	return b.String()
}

// summaryText renders counts as "ok 3, failed 1", most common first.
func summaryText(sum map[task.Status]int) string {
	type kv struct {
		k task.Status
		v int
	}
	var list []kv
	for k, v := range sum {
		if v > 0 {
			list = append(list, kv{k, v})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = fmt.Sprintf("%s %d", e.k, e.v)
	}
	if len(parts) == 0 {
		return "no results"
	}
	return strings.Join(parts, ", ")
}

// oneLine removes line breaks and control characters (a module name or an
// error must not add lines or headers) and clips to n runes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// EventOf says which event a run's end is: finished when every host is
// ok (status ok, or a "done" recorded before outcomes were computed with
// no host other than ok), failed otherwise.
func EventOf(status task.RunStatus, summary map[task.Status]int) string {
	if status == task.RunOK {
		return EventFinished
	}
	if status != task.RunDone {
		return EventFailed
	}
	for st, n := range summary {
		if st != task.StatusOK && n > 0 {
			return EventFailed
		}
	}
	return EventFinished
}
