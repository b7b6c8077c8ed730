// Package notify tells people about runs: when a run finishes, fails or
// waits for an operator (a rollout paused after its canary batch), each
// enabled channel subscribed to that event gets a message. Channels are a
// signed JSON webhook, DingTalk, WeCom (企业微信) and Feishu robots, and SMTP
// mail; an admin configures them, and their secrets are never shown back.
//
// Notifications go through a persistent outbox in the database: a run only
// enqueues (a channel's failure never fails or blocks a run), and a sender
// loop in each web tier claims due rows with a lease, sends them, and
// retries failures with exponential backoff until MaxAttempts. A web tier
// that restarts finds its unsent notifications in the outbox; of several
// tiers over one database exactly one claims each row.
package notify

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// Channel kinds.
const (
	KindWebhook  = "webhook"
	KindDingTalk = "dingtalk"
	KindWeCom    = "wecom"
	KindFeishu   = "feishu"
	KindSMTP     = "smtp"
)

// Kinds lists the channel kinds, for forms.
func Kinds() []string { return []string{KindWebhook, KindDingTalk, KindWeCom, KindFeishu, KindSMTP} }

// Events a channel can subscribe to.
const (
	EventFinished = "run.finished" // a run ended with every host ok
	EventFailed   = "run.failed"   // a run ended otherwise (a host not ok, failed, cancelled, interrupted)
	EventPaused   = "run.paused"   // a run waits for an operator's "continue"
	EventTest     = "test"         // the test button; never enqueued
)

// Events lists the events a channel can subscribe to, for forms.
func Events() []string { return []string{EventFinished, EventFailed, EventPaused} }

// SMTP connection security.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS (required), port 587
	TLSImplicit = "tls"      // TLS from the first byte, port 465
	TLSNone     = "none"     // no TLS: only for a relay on loopback; passwords are then refused
)

// Settings are a channel's settings. Secret and Password are secrets; the
// URL of a robot holds its access token, so it is treated as one too.
type Settings struct {
	// URL is where webhook, DingTalk, WeCom and Feishu messages are POSTed.
	URL string `json:"url,omitempty"`
	// Secret keys the signature: the webhook's HMAC-SHA256, DingTalk's and
	// Feishu's "加签" secret. Optional for robots, required for webhooks.
	Secret string `json:"secret,omitempty"`

	// SMTP mail.
	Host     string   `json:"host,omitempty"`
	Port     int      `json:"port,omitempty"`
	TLS      string   `json:"tls,omitempty"`
	CAFile   string   `json:"ca_file,omitempty"` // trust this CA for the server's certificate (default: system roots)
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
}

// Channel is a channel with its settings decoded.
type Channel struct {
	ID       int64
	Name     string
	Kind     string
	Enabled  bool
	Events   []string
	Settings Settings
}

// Subscribed reports whether the channel wants event.
func (c Channel) Subscribed(event string) bool { return slices.Contains(c.Events, event) }

func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// Limits on settings.
const (
	maxURLLen       = 2048
	maxSecretLen    = 256
	maxRecipients   = 50
	maxSMTPFieldLen = 255
)

// Validate checks a channel before it is stored; the error says what to
// change.
func (c *Channel) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return invalidf("a channel needs a name")
	}
	if len([]rune(c.Name)) > store.MaxNotifyNameLen {
		return invalidf("channel name is longer than %d characters", store.MaxNotifyNameLen)
	}
	if !slices.Contains(Kinds(), c.Kind) {
		return invalidf("channel kind %q is not one of %s", clip(c.Kind), strings.Join(Kinds(), ", "))
	}
	if len(c.Events) == 0 {
		return invalidf("channel %q subscribes to no event: choose at least one of %s", c.Name, strings.Join(Events(), ", "))
	}
	seen := map[string]bool{}
	for _, e := range c.Events {
		if !slices.Contains(Events(), e) {
			return invalidf("event %q is not one of %s", clip(e), strings.Join(Events(), ", "))
		}
		if seen[e] {
			return invalidf("event %q is listed twice", e)
		}
		seen[e] = true
	}
	s := &c.Settings
	if len(s.Secret) > maxSecretLen {
		return invalidf("the secret is longer than %d bytes", maxSecretLen)
	}
	switch c.Kind {
	case KindWebhook, KindDingTalk, KindWeCom, KindFeishu:
		if err := checkURL(s.URL); err != nil {
			return err
		}
		if c.Kind == KindWebhook && s.Secret == "" {
			return invalidf("a webhook needs a secret: receivers check the HMAC-SHA256 signature made with it")
		}
		if c.Kind == KindWeCom && s.Secret != "" {
			return invalidf("WeCom robots have no signing secret: the key in the URL is the credential")
		}
		if s.Host != "" || s.Username != "" || s.Password != "" || s.From != "" || len(s.To) > 0 || s.CAFile != "" || s.TLS != "" || s.Port != 0 {
			return invalidf("mail settings (host, port, tls, user, password, from, to) belong to smtp channels only")
		}
	case KindSMTP:
		if s.URL != "" || s.Secret != "" {
			return invalidf("url and secret belong to webhook and robot channels, not to smtp")
		}
		return checkSMTP(s)
	}
	return nil
}

func checkURL(raw string) error {
	if raw == "" {
		return invalidf("the channel needs a URL")
	}
	if len(raw) > maxURLLen {
		return invalidf("the URL is longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalidf("the URL must be an absolute http:// or https:// address")
	}
	if u.User != nil {
		return invalidf("the URL must not hold a user or password")
	}
	return nil
}

func checkSMTP(s *Settings) error {
	if s.Host == "" || len(s.Host) > maxSMTPFieldLen || strings.ContainsAny(s.Host, " /\r\n") {
		return invalidf("the mail server host is missing or not a host name")
	}
	if s.Port == 0 {
		s.Port = 587
		if s.TLS == TLSImplicit {
			s.Port = 465
		}
	}
	if s.Port < 1 || s.Port > 65535 {
		return invalidf("mail server port %d is not 1..65535", s.Port)
	}
	switch s.TLS {
	case "":
		s.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return invalidf("tls %q is not one of starttls, tls, none", clip(s.TLS))
	}
	if s.TLS == TLSNone && s.Password != "" {
		return invalidf("a password is never sent without TLS: use tls starttls or tls")
	}
	if len(s.Username) > maxSMTPFieldLen || len(s.Password) > maxSMTPFieldLen || len(s.CAFile) > 4096 {
		return invalidf("mail user, password or CA file path too long")
	}
	if (s.Username == "") != (s.Password == "") {
		return invalidf("mail user and password go together")
	}
	if _, err := mail.ParseAddress(s.From); err != nil || strings.ContainsAny(s.From, "\r\n") {
		return invalidf("from %q is not a mail address", clip(s.From))
	}
	if len(s.To) == 0 || len(s.To) > maxRecipients {
		return invalidf("a mail channel needs 1..%d recipients", maxRecipients)
	}
	for _, to := range s.To {
		if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "\r\n") {
			return invalidf("recipient %q is not a mail address", clip(to))
		}
	}
	return nil
}

func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// Merge keeps the stored secrets where an edit left them blank: forms never
// receive secrets, so a blank field means "unchanged". A robot's URL is
// kept the same way.
func Merge(edit Settings, stored Settings) Settings {
	if edit.Secret == "" {
		edit.Secret = stored.Secret
	}
	if edit.Password == "" {
		edit.Password = stored.Password
	}
	if edit.URL == "" {
		edit.URL = stored.URL
	}
	return edit
}

// FromStore decodes a stored channel.
func FromStore(c store.NotifyChannel) (Channel, error) {
	ch := Channel{ID: c.ID, Name: c.Name, Kind: c.Kind, Enabled: c.Enabled}
	if c.Events != "" {
		ch.Events = strings.Split(c.Events, ",")
	}
	if err := json.Unmarshal([]byte(c.Config), &ch.Settings); err != nil {
		return Channel{}, fmt.Errorf("notify: channel %d: stored settings: %w", c.ID, err)
	}
	return ch, nil
}

// ToStore encodes a channel for storage.
func ToStore(c Channel) (store.NotifyChannel, error) {
	b, err := json.Marshal(c.Settings)
	if err != nil {
		return store.NotifyChannel{}, fmt.Errorf("notify: encode settings: %w", err)
	}
	return store.NotifyChannel{ID: c.ID, Name: c.Name, Kind: c.Kind, Enabled: c.Enabled,
		Events: strings.Join(c.Events, ","), Config: string(b)}, nil
}

// View is a channel as shown to an admin: secrets are never included, only
// whether they are set; a robot URL (which holds its token) is reduced to
// its scheme and host.
type View struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Enabled    bool     `json:"enabled"`
	Events     []string `json:"events"`
	URL        string   `json:"url,omitempty"`
	SecretSet  bool     `json:"secret_set"`
	Host       string   `json:"host,omitempty"`
	Port       int      `json:"port,omitempty"`
	TLS        string   `json:"tls,omitempty"`
	CAFile     string   `json:"ca_file,omitempty"`
	Username   string   `json:"username,omitempty"`
	PasswordOK bool     `json:"password_set"`
	From       string   `json:"from,omitempty"`
	To         []string `json:"to,omitempty"`
}

// Redact returns what may be shown of c.
func Redact(c Channel) View {
	s := c.Settings
	v := View{ID: c.ID, Name: c.Name, Kind: c.Kind, Enabled: c.Enabled, Events: c.Events,
		SecretSet: s.Secret != "", Host: s.Host, Port: s.Port, TLS: s.TLS, CAFile: s.CAFile,
		Username: s.Username, PasswordOK: s.Password != "", From: s.From, To: s.To}
	if s.URL != "" {
		if u, err := url.Parse(s.URL); err == nil {
			v.URL = u.Scheme + "://" + u.Host + "/…"
		}
	}
	return v
}
