// Package smsgw sends SMS through an HTTP SMS gateway (sms.via: http, SPEC section 8): one request per
// message, in the shape of Twilio's Programmable Messaging, Vonage's SMS API, or a custom request from the
// http_sms section's templates; and it reads the delivery reports the gateway posts back to the engine's
// /callbacks/sms/{ref} route, checking their signatures, into message.Receipts.
//
// Every value of a message is encoded for the place it goes in (a form value, JSON string contents, a
// percent-encoded URL part); a header value with a line break is refused. Secrets (auth tokens, API
// secrets, signature secrets) are never logged, nor is a message's text or code: the log names the Ref.
package smsgw

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"flashotp/message"
	"flashotp/sms"
)

// maxAnswer bounds what is read of a gateway's answer.
const maxAnswer = 64 << 10

// Backoff between tries of a message the gateway could not take (5xx, 408, 429, a network error): it
// doubles from minBackoff up to maxBackoff, within the message's deadline.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Sender sends SMS through the configured gateway; it is a message.Sender and takes the gateway's
// delivery reports (Callback).
type Sender struct {
	s        Settings
	custom   *custom
	codes    codeSet
	client   *http.Client
	receipts message.Receipts
	log      *slog.Logger
	now      func() time.Time
}

var _ message.Sender = (*Sender)(nil)

// New returns the Sender of s (which must Validate), reporting delivery reports to receipts.
func New(s Settings, receipts message.Receipts, log *slog.Logger) (*Sender, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	g := &Sender{s: s, receipts: receipts, log: log.With("via", "http", "preset", s.Preset), now: time.Now}
	g.codes, _ = parseCodes(s.SuccessCodes)
	switch s.Preset {
	case PresetTwilio:
		g.s.URL = strings.TrimRight(cmp.Or(s.URL, TwilioURL), "/")
	case PresetVonage:
		g.s.URL = strings.TrimRight(cmp.Or(s.URL, VonageURL), "/")
	case PresetCustom:
		g.custom, _ = compile(s)
	}
	g.s.CallbackBaseURL = strings.TrimRight(s.CallbackBaseURL, "/")
	g.client = &http.Client{
		Timeout: s.Timeout,
		// A gateway that redirects is answered as it answered: a redirect would carry the credentials
		// elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
	}
	return g, nil
}

// Close closes the idle connections to the gateway.
func (g *Sender) Close() { g.client.CloseIdleConnections() }

// CallbackURL is where the gateway reports on the message of ref ("" without callback_base_url); a custom
// gateway's carries the signature of ref when callback_secret is set.
func (g *Sender) CallbackURL(ref string) string {
	if g.s.CallbackBaseURL == "" {
		return ""
	}
	u := g.s.CallbackBaseURL + CallbackPath + url.PathEscape(ref)
	if g.s.Preset == PresetCustom && g.s.CallbackSecret != "" {
		u += "?sig=" + refSig(g.s.CallbackSecret, ref)
	}
	return u
}

// Send sends m with one request, tried again on a temporary failure until ctx ends.
func (g *Sender) Send(ctx context.Context, m message.Message) message.Result {
	enc, segments := sms.Measure(m.Text)
	from := cmp.Or(g.s.From, m.From)
	req, err := g.build(m, from, enc)
	if err != nil {
		// The message cannot be put in a request (a custom template refused its values): it never will be.
		return g.failed(m, message.ReasonRejected, err.Error())
	}
	res, tries, ok := message.Retry(ctx, minBackoff, maxBackoff, func(n int) (message.Result, bool) {
		res, temporary := g.try(ctx, req)
		if temporary {
			g.log.Warn("sms gateway failed, trying again", "ref", m.Ref, "try", n, "detail", res.Detail)
		}
		return res, temporary
	})
	if !ok {
		return g.failed(m, message.ReasonUnavailable, fmt.Sprintf("after %d tries: %s", tries, res.Detail))
	}
	res.Segments, res.At = segments, g.now()
	if res.State == message.Sent {
		g.log.Debug("sms sent", "ref", m.Ref, "provider_id", res.ProviderID, "tries", tries)
	} else {
		g.log.Warn("sms refused", "ref", m.Ref, "reason", res.Reason, "detail", res.Detail, "tries", tries)
	}
	return res
}

func (g *Sender) failed(m message.Message, reason, detail string) message.Result {
	g.log.Warn("sms not sent", "ref", m.Ref, "reason", reason, "detail", detail)
	_, segments := sms.Measure(m.Text)
	return message.Result{State: message.Failed, Reason: reason, Detail: detail, Segments: segments, At: g.now()}
}

// outgoing is a built request, sent again as is on each try.
type outgoing struct {
	method, url string
	header      http.Header
	body        []byte
}

// build makes m's request in the preset's shape.
func (g *Sender) build(m message.Message, from string, enc sms.Encoding) (outgoing, error) {
	h := http.Header{}
	h.Set("User-Agent", "flashotp")
	switch g.s.Preset {
	case PresetTwilio:
		f := url.Values{"To": {m.To}, "Body": {m.Text}}
		if g.s.MessagingServiceSID != "" {
			f.Set("MessagingServiceSid", g.s.MessagingServiceSID)
			if g.s.From != "" {
				f.Set("From", g.s.From)
			}
		} else {
			f.Set("From", from)
		}
		if cb := g.CallbackURL(m.Ref); cb != "" {
			f.Set("StatusCallback", cb)
		}
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("Accept", "application/json")
		h.Set("Authorization", basic(g.s.AccountSID, g.s.AuthToken))
		u := g.s.URL + "/2010-04-01/Accounts/" + url.PathEscape(g.s.AccountSID) + "/Messages.json"
		return outgoing{http.MethodPost, u, h, []byte(f.Encode())}, nil
	case PresetVonage:
		f := url.Values{
			"api_key": {g.s.APIKey}, "api_secret": {g.s.APISecret}, "from": {strings.TrimPrefix(from, "+")},
			"to": {strings.TrimPrefix(m.To, "+")}, "text": {m.Text}, "client-ref": {m.Ref},
		}
		if enc == sms.UCS2 {
			f.Set("type", "unicode")
		}
		if cb := g.CallbackURL(m.Ref); cb != "" {
			f.Set("callback", cb)
		}
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("Accept", "application/json")
		return outgoing{http.MethodPost, g.s.URL + "/sms/json", h, []byte(f.Encode())}, nil
	}
	v := Vars{To: m.To, From: from, Text: m.Text, Code: m.Code, Ref: m.Ref, App: m.App, Locale: m.Locale,
		Encoding: string(enc), CallbackURL: g.CallbackURL(m.Ref)}
	r, body, err := g.custom.render(v)
	if err != nil {
		return outgoing{}, err
	}
	for _, k := range sortedKeys(r.headers) {
		h.Set(k, r.headers[k])
	}
	if len(body) > 0 && h.Get("Content-Type") == "" {
		if g.s.BodyFormat == FormatForm {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			h.Set("Content-Type", "application/json")
		}
	}
	switch {
	case g.s.Auth.Token != "":
		h.Set("Authorization", "Bearer "+g.s.Auth.Token)
	case g.s.Auth.Username != "":
		h.Set("Authorization", basic(g.s.Auth.Username, g.s.Auth.Password))
	}
	return outgoing{g.s.Method, r.url, h, body}, nil
}

func basic(user, pass string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// try sends req once and says what came of it, and whether that is worth another try.
func (g *Sender) try(ctx context.Context, o outgoing) (message.Result, bool) {
	req, err := http.NewRequestWithContext(ctx, o.method, o.url, bytes.NewReader(o.body))
	if err != nil {
		return message.Result{State: message.Failed, Reason: message.ReasonRejected, Detail: "request: " + redact(err.Error(), o.url)}, false
	}
	req.Header = o.header.Clone()
	resp, err := g.client.Do(req)
	if err != nil {
		// Not the URL: a custom one may hold a secret in its query (url.Error prints it).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return message.Result{State: message.Failed, Reason: message.ReasonUnavailable, Detail: "gateway unreachable: " + err.Error()}, true
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return message.Result{State: message.Failed, Reason: message.ReasonUnavailable, Detail: "reading the answer: " + err.Error()}, true
	}
	return g.classify(resp.StatusCode, answer)
}

// redact keeps a custom URL's query out of an error.
func redact(s, u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		s = strings.ReplaceAll(s, u, u[:i]+"?…")
	}
	return s
}

// classify maps a gateway's answer to a Result, and whether it is worth another try.
func (g *Sender) classify(status int, answer []byte) (message.Result, bool) {
	fail := func(reason, detail string) message.Result {
		return message.Result{State: message.Failed, Reason: reason, Detail: detail}
	}
	if !g.codes.has(status) {
		detail := fmt.Sprintf("gateway answered %d %s", status, snippet(answer))
		switch {
		case status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
			return fail(message.ReasonUnavailable, detail), true
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return fail(message.ReasonAuthFailed, detail), false
		case status >= 300 && status < 400:
			return fail(message.ReasonBadResponse, detail), false
		default:
			return fail(message.ReasonRejected, detail), false
		}
	}
	switch g.s.Preset {
	case PresetTwilio:
		var a struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		if json.Unmarshal(answer, &a) != nil || a.SID == "" {
			return fail(message.ReasonBadResponse, fmt.Sprintf("gateway answered %d without a message sid: %s", status, snippet(answer))), false
		}
		if a.Status == "failed" || a.Status == "undelivered" {
			return fail(message.ReasonRejected, "gateway took it as "+a.Status), false
		}
		return message.Result{State: message.Sent, ProviderID: a.SID, Detail: a.Status}, false
	case PresetVonage:
		return vonageAnswer(status, answer)
	}
	if g.s.IDField == "" {
		return message.Result{State: message.Sent}, false
	}
	var a any
	if err := json.Unmarshal(answer, &a); err != nil {
		return fail(message.ReasonBadResponse, fmt.Sprintf("gateway answered %d, not JSON: %s", status, snippet(answer))), false
	}
	id, ok := lookup(a, g.s.IDField)
	if !ok {
		return fail(message.ReasonBadResponse, fmt.Sprintf("gateway answered %d without %s: %s", status, g.s.IDField, snippet(answer))), false
	}
	return message.Result{State: message.Sent, ProviderID: id}, false
}

// vonageAnswer reads Vonage's answer: 200 with messages[0].status "0", or another status and its
// error-text (https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms).
func vonageAnswer(status int, answer []byte) (message.Result, bool) {
	var a struct {
		Messages []struct {
			Status    string `json:"status"`
			MessageID string `json:"message-id"`
			ErrorText string `json:"error-text"`
		} `json:"messages"`
	}
	if json.Unmarshal(answer, &a) != nil || len(a.Messages) == 0 || a.Messages[0].Status == "" {
		return message.Result{State: message.Failed, Reason: message.ReasonBadResponse, Detail: fmt.Sprintf("gateway answered %d without messages[0].status: %s", status, snippet(answer))}, false
	}
	m := a.Messages[0]
	if m.Status == "0" {
		if m.MessageID == "" {
			return message.Result{State: message.Failed, Reason: message.ReasonBadResponse, Detail: "status 0 without a message-id"}, false
		}
		return message.Result{State: message.Sent, ProviderID: m.MessageID}, false
	}
	detail := "vonage status " + m.Status + ": " + m.ErrorText
	switch m.Status {
	case "1", "5": // throttled, internal error: try again
		return message.Result{State: message.Failed, Reason: message.ReasonUnavailable, Detail: detail}, true
	case "4", "14": // invalid credentials, invalid signature
		return message.Result{State: message.Failed, Reason: message.ReasonAuthFailed, Detail: detail}, false
	}
	return message.Result{State: message.Failed, Reason: message.ReasonRejected, Detail: detail}, false
}

// lookup finds the dotted path in a decoded JSON value ("messages.0.id"), as a string.
func lookup(v any, path string) (string, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return "", false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return "", false
			}
			v = x[i]
		default:
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, x != ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// snippet is the start of a gateway's answer, for the log and the step (what a gateway says of a refusal
// is its own words, never the engine's secrets).
func snippet(b []byte) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}
