package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"

	"flashotp/message"
	"flashotp/templates"
)

// Errors of the webhook.
var (
	// ErrPayload is returned by Statuses for a body that is not a WhatsApp webhook's JSON.
	ErrPayload = errors.New("not a WhatsApp webhook payload")
)

// Bounds of what the Sender keeps and reads.
const (
	// maxAnswer bounds the bytes of an API answer read: a success is a few hundred.
	maxAnswer = 64 << 10
	// wamidTTL is how long the wamid → Ref map remembers a message: its statuses come in seconds to
	// minutes, and a user who reads a code does so within the code's life (15 minutes at most).
	wamidTTL = time.Hour
	// maxWamids bounds that map, whatever the send rate.
	maxWamids = 100_000
	// Retries of a temporary failure start at backoffMin and double up to backoffMax, with jitter.
	backoffMin = 200 * time.Millisecond
	backoffMax = 5 * time.Second
)

// Sender sends authentication templates through the Cloud API and turns its status webhooks into
// Receipts. It is a message.Sender, safe for concurrent use.
type Sender struct {
	cfg      Settings
	endpoint string // {base_url}/{api_version}/{phone_number_id}/messages
	client   *http.Client
	receipts message.Receipts
	log      *slog.Logger
	now      func() time.Time

	langTags  []language.Tag
	langCodes []string // Meta's language code of langTags[i]
	matcher   language.Matcher

	mu     sync.Mutex
	refs   map[string]string // wamid → Ref
	sentAt []sentWamid       // the map's entries, oldest first, to forget them
}

type sentWamid struct {
	wamid string
	at    time.Time
}

var _ message.Sender = (*Sender)(nil)

// New returns a Sender for s (validated: New checks it again), reporting the webhooks' statuses to
// receipts. log nil: slog.Default().
func New(s Settings, receipts message.Receipts, log *slog.Logger) (*Sender, error) {
	if !s.Configured() {
		return nil, errors.New("whatsapp: phone_number_id is not set")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("whatsapp: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if receipts == nil {
		receipts = func(message.Receipt) {}
	}
	langs := s.Languages
	if len(langs) == 0 {
		langs = DefaultLanguages
	}
	// The first tag is the matcher's fallback: en when mapped, else the first in order.
	locales := slices.Sorted(maps.Keys(langs))
	if i := slices.Index(locales, templates.DefaultLocale); i > 0 {
		locales = append(append([]string{templates.DefaultLocale}, locales[:i]...), locales[i+1:]...)
	}
	snd := &Sender{
		cfg:      s,
		endpoint: strings.TrimRight(s.BaseURL, "/") + "/" + s.APIVersion + "/" + url.PathEscape(s.PhoneNumberID) + "/messages",
		client:   &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}},
		receipts: receipts,
		log:      log.With("channel", "whatsapp"),
		now:      time.Now,
		refs:     map[string]string{},
	}
	for _, l := range locales {
		snd.langTags = append(snd.langTags, language.Make(strings.ReplaceAll(l, "_", "-")))
		snd.langCodes = append(snd.langCodes, langs[l])
	}
	snd.matcher = language.NewMatcher(snd.langTags)
	return snd, nil
}

// Close drops the Sender's idle connections to the API.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Language returns the template language code for locale (BCP 47): the nearest configured locale's, else
// the fallback's.
func (s *Sender) Language(locale string) string {
	t, err := language.Parse(strings.ReplaceAll(locale, "_", "-"))
	if err != nil {
		return s.langCodes[0]
	}
	_, i, conf := s.matcher.Match(t)
	if conf == language.No {
		return s.langCodes[0]
	}
	return s.langCodes[i]
}

// request is the Cloud API's send-message body for a template message.
type request struct {
	MessagingProduct string   `json:"messaging_product"`
	RecipientType    string   `json:"recipient_type"`
	To               string   `json:"to"`
	Type             string   `json:"type"`
	Template         template `json:"template"`
	// BizOpaqueCallbackData comes back in the message's status webhooks: the step's Ref.
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data,omitempty"`
}

type template struct {
	Name       string      `json:"name"`
	Language   lang        `json:"language"`
	Components []component `json:"components"`
}

type lang struct {
	Code string `json:"code"`
}

type component struct {
	Type       string      `json:"type"`
	SubType    string      `json:"sub_type,omitempty"`
	Index      string      `json:"index,omitempty"`
	Parameters []parameter `json:"parameters"`
}

type parameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// answer is the API's answer: the message's ID on success, an error otherwise.
type answer struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
	Error *apiError `json:"error"`
}

type apiError struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode"`
	Title     string `json:"error_user_title"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
	TraceID string `json:"fbtrace_id"`
}

// Body returns the JSON request that sends m: the authentication template with the code as the body's
// parameter and as the copy-code (or one-tap) button's, m.Ref as biz_opaque_callback_data.
func (s *Sender) Body(m message.Message) ([]byte, error) {
	to := strings.TrimPrefix(m.To, "+")
	if to == "" || len(to) > 15 || strings.Trim(to, "0123456789") != "" {
		return nil, fmt.Errorf("recipient %q is not an E.164 number", m.To)
	}
	if m.Code == "" || len(m.Code) > 15 {
		return nil, errors.New("no code to send (a WhatsApp authentication template takes the code as its parameter)")
	}
	code := parameter{Type: "text", Text: m.Code}
	return json.Marshal(request{
		MessagingProduct: "whatsapp",
		RecipientType:    "individual",
		To:               to,
		Type:             "template",
		Template: template{
			Name:     s.cfg.Template,
			Language: lang{Code: s.Language(m.Locale)},
			Components: []component{
				{Type: "body", Parameters: []parameter{code}},
				{Type: "button", SubType: "url", Index: "0", Parameters: []parameter{code}},
			},
		},
		BizOpaqueCallbackData: m.Ref,
	})
}

// Send sends m as the authentication template, one request (retried on a 5xx, a rate limit or a
// network failure, with backoff, until ctx ends; a retry after a lost answer may deliver the same code
// twice, never a different one). The API's refusal (4xx) fails it with its reason.
func (s *Sender) Send(ctx context.Context, m message.Message) message.Result {
	body, err := s.Body(m)
	if err != nil {
		return s.result(message.Failed, message.ReasonRejected, err.Error(), "")
	}
	res, _, ok := message.Retry(ctx, backoffMin, backoffMax, func(n int) (message.Result, bool) {
		res, retry := s.post(ctx, body, m)
		if retry {
			s.log.Warn("whatsapp send failed, retrying", "ref", m.Ref, "attempt", n, "detail", res.Detail)
		}
		return res, retry
	})
	if !ok {
		res.State, res.Reason = message.Failed, message.ReasonUnavailable
	} else if res.State == message.Sent {
		s.remember(res.ProviderID, m.Ref)
	}
	return res
}

// post makes one request, and says whether its failure is temporary.
func (s *Sender) post(ctx context.Context, body []byte, m message.Message) (message.Result, bool) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return s.result(message.Failed, message.ReasonUnavailable, err.Error(), ""), false
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error names the URL (no secret in it) and the cause.
		return s.result(message.Failed, message.ReasonUnavailable, s.scrub(err.Error(), m.Code), ""), true
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return s.result(message.Failed, message.ReasonUnavailable, "reading the answer: "+s.scrub(err.Error(), m.Code), ""), true
	}
	var a answer
	jsonErr := json.Unmarshal(raw, &a)
	if resp.StatusCode/100 == 2 {
		if jsonErr != nil || len(a.Messages) == 0 || a.Messages[0].ID == "" {
			return s.result(message.Failed, message.ReasonBadResponse, fmt.Sprintf("HTTP %d without a message ID", resp.StatusCode), ""), false
		}
		return s.result(message.Sent, "", "", a.Messages[0].ID), false
	}
	detail := "HTTP " + strconv.Itoa(resp.StatusCode)
	if jsonErr != nil || a.Error == nil {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return s.result(message.Failed, message.ReasonUnavailable, detail, ""), true
		}
		return s.result(message.Failed, message.ReasonBadResponse, detail+" without an error the engine can read", ""), false
	}
	e := a.Error
	detail = s.scrub(fmt.Sprintf("%s: error %d %s", detail, e.Code, describe(e)), m.Code)
	reason, temporary := Classify(resp.StatusCode, e.Code)
	return s.result(message.Failed, reason, detail, ""), temporary
}

// describe is an API error's words: its message, its details, its trace ID (for Meta's support).
func describe(e *apiError) string {
	d := e.Message
	if e.ErrorData.Details != "" && e.ErrorData.Details != e.Message {
		d += " (" + e.ErrorData.Details + ")"
	}
	if e.TraceID != "" {
		d += " fbtrace_id=" + e.TraceID
	}
	if len(d) > 300 {
		d = d[:300] + "..."
	}
	return d
}

// scrub removes the code and the access token from what the API or the network said, in case either was
// echoed back: a Result's detail is logged and stored.
func (s *Sender) scrub(detail, code string) string {
	if code != "" {
		detail = strings.ReplaceAll(detail, code, "[code]")
	}
	return strings.ReplaceAll(detail, s.cfg.AccessToken, "[token]")
}

func (s *Sender) result(state message.State, reason, detail, id string) message.Result {
	return message.Result{State: state, Reason: reason, Detail: detail, ProviderID: id, At: s.now()}
}

// Classify maps the API's answer (HTTP status and error.code, the Cloud API's error codes) to a message
// reason, and reports whether it is temporary: worth the same request again.
func Classify(status, code int) (reason string, temporary bool) {
	switch code {
	case 0, 10, 190, 131005: // AuthException, permission denied, access token expired or invalid, access denied
		return message.ReasonAuthFailed, false
	case 4, 80007, 130429, 131056: // API call, WABA, throughput and pair rate limits
		return message.ReasonUnavailable, true
	case 1, 2, 131000, 131016: // unknown error, service temporarily unavailable, something went wrong, service unavailable
		return message.ReasonUnavailable, true
	case 131026: // message undeliverable (not on WhatsApp, old client, terms not accepted)
		return message.ReasonUndelivered, false
	}
	if 200 <= code && code <= 299 { // API permission
		return message.ReasonAuthFailed, false
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return message.ReasonAuthFailed, false
	case status == http.StatusTooManyRequests || status >= 500:
		return message.ReasonUnavailable, true
	}
	// Template missing (132001), parameters wrong (132000, 132012, 131008, 131009), recipient not
	// allowed (131030), spam limits (131048), policy (368, 131031, 131049) and the rest.
	return message.ReasonRejected, false
}

// remember maps wamid to ref for the statuses that come without biz_opaque_callback_data, forgetting
// entries older than wamidTTL and the oldest past maxWamids.
func (s *Sender) remember(wamid, ref string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[wamid] = ref
	s.sentAt = append(s.sentAt, sentWamid{wamid, now})
	drop := 0
	for drop < len(s.sentAt) && (len(s.sentAt)-drop > maxWamids || now.Sub(s.sentAt[drop].at) > wamidTTL) {
		delete(s.refs, s.sentAt[drop].wamid)
		drop++
	}
	// Re-slicing keeps this O(1) a message; append moves what is left to a new array as it grows.
	s.sentAt = s.sentAt[drop:]
}

// ref returns the Ref of the message wamid names, if the Sender sent it lately.
func (s *Sender) ref(wamid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refs[wamid]
	return r, ok
}
