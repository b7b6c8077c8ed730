package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"
)

// sendMail delivers a notification by SMTP: STARTTLS (required, never
// skipped when the server does not offer it), implicit TLS, or plain only
// when no password is sent. The body is UTF-8 text in base64, so CJK text
// and long lines pass any relay.
func sendMail(ctx context.Context, s Settings, m Message, delivery int64, now time.Time, timeout time.Duration) error {
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsCfg := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fmt.Errorf("mail CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("mail CA file %s holds no PEM certificate", s.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	deadline := now.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := &net.Dialer{Timeout: timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to mail server %s: %w", addr, err)
	}
	// The whole conversation shares one deadline; a context cancelled
	// meanwhile closes the connection.
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("mail server %s: TLS: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail server %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("omserver"); err != nil {
		return fmt.Errorf("mail server %s: EHLO: %w", addr, err)
	}
	if s.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("mail server %s does not offer STARTTLS (set tls to \"tls\" for port 465, or \"none\" for a loopback relay)", addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("mail server %s: STARTTLS: %w", addr, err)
		}
	}
	if s.Username != "" {
		// PlainAuth itself refuses to send the password over a connection
		// that is not TLS (except to localhost).
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return fmt.Errorf("mail server %s: login: %w", addr, err)
		}
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("mail server %s: MAIL FROM: %w", addr, err)
	}
	var to []string
	for _, raw := range s.To {
		a, err := mail.ParseAddress(raw)
		if err != nil {
			return fmt.Errorf("recipient: %w", err)
		}
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("mail server %s: RCPT TO %s: %w", addr, a.Address, err)
		}
		to = append(to, a.String())
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail server %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(mailMessage(from.String(), to, m, delivery, now)); err != nil {
		return fmt.Errorf("mail server %s: writing the message: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail server %s: message refused: %w", addr, err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted at the end of DATA; a failed QUIT
		// does not undo it.
		return nil
	}
	return nil
}

// mailMessage builds the RFC 5322 message. Header values come from parsed
// addresses and a one-line subject (RFC 2047 encoded), so nothing a module
// name or an error holds can add a header.
func mailMessage(from string, to []string, m Message, delivery int64, now time.Time) []byte {
	var b strings.Builder
	var id [12]byte
	_, _ = rand.Read(id[:])
	host := "omserver"
	if at := strings.LastIndexByte(from, '@'); at >= 0 {
		host = strings.Trim(from[at+1:], "> ")
	}
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.BEncoding.Encode("utf-8", m.Subject()))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"."+strconv.FormatInt(delivery, 10)+"@"+host+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "base64")
	hdr("X-OMServer-Event", m.Event)
	b.WriteString("\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(m.Text()))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return []byte(b.String())
}
