package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed JSON webhook. The signature is
//
//	X-OMServer-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// over the exact body bytes, with timestamp the decimal Unix seconds sent in
// X-OMServer-Timestamp. A receiver recomputes it, compares in constant time
// and refuses timestamps far from its clock (VerifyWebhook: 5 minutes).
// X-OMServer-Delivery is the outbox row's id, the same on every retry of
// one notification, so a receiver can drop duplicates.
const (
	HeaderEvent     = "X-OMServer-Event"
	HeaderDelivery  = "X-OMServer-Delivery"
	HeaderTimestamp = "X-OMServer-Timestamp"
	HeaderSignature = "X-OMServer-Signature"
)

// WebhookSignature is the X-OMServer-Signature value for body sent at ts.
func WebhookSignature(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is a webhook whose signature or timestamp does not check.
var ErrBadSignature = errors.New("notify: webhook signature does not verify")

// VerifyWebhook checks a received webhook's timestamp and signature headers
// against body (for receivers written in Go, and the tests).
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp missing or not a number", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: timestamp %d is %s away from now", ErrBadSignature, ts, d)
	}
	want := WebhookSignature(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(h.Get(HeaderSignature))) {
		return ErrBadSignature
	}
	return nil
}

// DingTalkSign is the sign parameter of a DingTalk robot with 加签: base64
// of HMAC-SHA256 keyed by the secret over "timestamp\nsecret", timestamp in
// milliseconds (sent as the timestamp and sign query parameters, URL-encoded;
// DingTalk refuses timestamps over an hour off).
func DingTalkSign(secret string, tsMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(tsMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FeishuSign is the sign field of a Feishu custom bot with signature
// verification: base64 of HMAC-SHA256 keyed by "timestamp\nsecret" over an
// empty message, timestamp in seconds (sent in the JSON body with it).
func FeishuSign(secret string, tsSeconds int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(tsSeconds, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// maxResponse is how much of a receiver's answer is read.
const maxResponse = 64 << 10

// sendHTTP posts a notification to a webhook or robot channel.
func sendHTTP(ctx context.Context, client *http.Client, ch Channel, m Message, delivery int64, now time.Time) error {
	s := ch.Settings
	target := s.URL
	var body []byte
	var err error
	header := http.Header{}
	header.Set("Content-Type", "application/json; charset=utf-8")
	switch ch.Kind {
	case KindWebhook:
		body, err = json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		ts := now.Unix()
		header.Set(HeaderEvent, m.Event)
		header.Set(HeaderDelivery, strconv.FormatInt(delivery, 10))
		header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		header.Set(HeaderSignature, WebhookSignature(s.Secret, ts, body))
	case KindDingTalk:
		// https://open.dingtalk.com/document/robots/custom-robot-access:
		// markdown message; with a secret, timestamp and sign go in the query.
		body, err = json.Marshal(map[string]any{
			"msgtype":  "markdown",
			"markdown": map[string]string{"title": m.Subject(), "text": markdown(m)},
		})
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		if s.Secret != "" {
			ms := now.UnixMilli()
			target, err = withQuery(target, url.Values{"timestamp": {strconv.FormatInt(ms, 10)}, "sign": {DingTalkSign(s.Secret, ms)}})
			if err != nil {
				return err
			}
		}
	case KindWeCom:
		// https://developer.work.weixin.qq.com/document/path/91770: the key
		// in the URL is the credential; markdown message.
		body, err = json.Marshal(map[string]any{
			"msgtype":  "markdown",
			"markdown": map[string]string{"content": markdown(m)},
		})
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
	case KindFeishu:
		// https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot:
		// text message; with a secret, timestamp and sign go in the body.
		msg := map[string]any{"msg_type": "text", "content": map[string]string{"text": m.Text()}}
		if s.Secret != "" {
			sec := now.Unix()
			msg["timestamp"] = strconv.FormatInt(sec, 10)
			msg["sign"] = FeishuSign(s.Secret, sec)
		}
		body, err = json.Marshal(msg)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
	default:
		return fmt.Errorf("channel kind %q does not post over HTTP", ch.Kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header = header
	req.Header.Set("User-Agent", "omserver-notify")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", redactedURL(s.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s: %s", redactedURL(s.URL), resp.Status, oneLine(string(answer), 200))
	}
	return checkRobotAnswer(ch.Kind, answer)
}

// checkRobotAnswer reads the JSON answer of a robot, which reports refusals
// (bad signature, rate limit, keyword missing) with HTTP 200 and a code.
func checkRobotAnswer(kind string, answer []byte) error {
	switch kind {
	case KindDingTalk, KindWeCom:
		var a struct {
			ErrCode *int   `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if err := json.Unmarshal(answer, &a); err != nil || a.ErrCode == nil {
			return fmt.Errorf("%s answered without an errcode: %s", kind, oneLine(string(answer), 200))
		}
		if *a.ErrCode != 0 {
			return fmt.Errorf("%s refused the message: errcode %d: %s", kind, *a.ErrCode, oneLine(a.ErrMsg, 200))
		}
	case KindFeishu:
		var a struct {
			Code       *int   `json:"code"`
			Msg        string `json:"msg"`
			StatusCode *int   `json:"StatusCode"` // older answers
		}
		if err := json.Unmarshal(answer, &a); err != nil || (a.Code == nil && a.StatusCode == nil) {
			return fmt.Errorf("feishu answered without a code: %s", oneLine(string(answer), 200))
		}
		code := a.Code
		if code == nil {
			code = a.StatusCode
		}
		if *code != 0 {
			return fmt.Errorf("feishu refused the message: code %d: %s", *code, oneLine(a.Msg, 200))
		}
	}
	return nil
}

// markdown renders a message for DingTalk and WeCom markdown.
func markdown(m Message) string {
	lines := strings.Split(strings.TrimRight(m.Text(), "\n"), "\n")
	var b strings.Builder
	b.WriteString("### " + escapeMarkdown(lines[0]) + "\n")
	for _, l := range lines[1:] {
		b.WriteString("- " + escapeMarkdown(l) + "\n")
	}
	return b.String()
}

// escapeMarkdown keeps a module name or an error from becoming markup.
func escapeMarkdown(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`", "#", `\#`, "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

func withQuery(raw string, extra url.Values) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("channel URL: %w", err)
	}
	q := u.Query()
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redactedURL names a URL in errors without its token (path and query).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the channel URL"
	}
	return u.Scheme + "://" + u.Host
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the full
// URL (with a robot's token).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
