package smsgw

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"flashotp/fault"
	"flashotp/message"
)

// CallbackPath is where the engine takes delivery reports: CallbackPath + ref, under callback_base_url.
const CallbackPath = "/callbacks/sms/"

// maxSkew is how far a signed Vonage report's timestamp may be from now: an older one is a replay.
const maxSkew = 5 * time.Minute

// validRef is what a step's ref looks like (otp's verification ID, ~ and the step's index).
var validRef = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,100}$`)

// Callback reads the gateway's report on the message of ref from r, the request as the engine received it
// (its body already bounded by http.max_body_bytes), checks its signature, and hands a delivered or failed
// status to the Receipts; other statuses (queued, sent, accepted, buffered, ...) change nothing. It
// returns a *fault.Error: Forbidden for a bad or missing signature, InvalidRequest for a report it cannot
// read, NotFound when no reports were asked for; nothing is recorded then.
func (g *Sender) Callback(ref string, r *http.Request) error {
	if g.s.CallbackBaseURL == "" {
		return fault.Errorf(fault.NotFound, "this engine asks its SMS gateway for no reports (http_sms.callback_base_url)")
	}
	if !validRef.MatchString(ref) {
		return fault.Errorf(fault.InvalidRequest, "not a message's reference")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fault.Errorf(fault.InvalidRequest, "report not read: %v", err)
	}
	form, err := params(r, body)
	if err != nil {
		return fault.Errorf(fault.InvalidRequest, "report not read: %v", err)
	}
	var rc *message.Receipt
	switch g.s.Preset {
	case PresetTwilio:
		rc, err = g.twilioReport(ref, r, form)
	case PresetVonage:
		rc, err = g.vonageReport(ref, r, form)
	default:
		rc, err = g.customReport(ref, r, form)
	}
	if err != nil {
		g.log.Warn("sms report refused", "ref", ref, "remote", r.RemoteAddr, "err", err)
		return err
	}
	if rc == nil {
		return nil // a status on the way: nothing to record
	}
	rc.Ref, rc.At = ref, g.now()
	g.log.Info("sms report", "ref", ref, "state", rc.State, "reason", rc.Reason)
	if g.receipts != nil {
		g.receipts(*rc)
	}
	return nil
}

// params are the report's fields: its body's (a form, or a JSON object's scalars) for a POST, its query's
// for a GET.
func params(r *http.Request, body []byte) (url.Values, error) {
	if r.Method == http.MethodGet || len(bytes.TrimSpace(body)) == 0 {
		return url.ParseQuery(r.URL.RawQuery)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		return url.ParseQuery(string(body))
	case "application/json":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		out := url.Values{}
		for k, raw := range obj {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				out.Set(k, s)
				continue
			}
			var n json.Number
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if d.Decode(&n) == nil {
				out.Set(k, n.String())
			}
			// Objects, lists, null and booleans are no field a report is read from.
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a form or JSON body, got Content-Type %q", r.Header.Get("Content-Type"))
}

// twilioReport checks X-Twilio-Signature (base64 HMAC-SHA1 keyed by the auth token of the URL Twilio
// posted to, then each POST parameter's name and value in the names' order) and maps MessageStatus.
// https://www.twilio.com/docs/usage/security#validating-requests
func (g *Sender) twilioReport(ref string, r *http.Request, form url.Values) (*message.Receipt, error) {
	got := r.Header.Get("X-Twilio-Signature")
	signed := g.s.CallbackBaseURL + CallbackPath + url.PathEscape(ref)
	if r.URL.RawQuery != "" {
		signed += "?" + r.URL.RawQuery
	}
	post := form
	if r.Method == http.MethodGet {
		post = nil // a GET's parameters are in the URL already
	}
	want := TwilioSignature(g.s.AuthToken, signed, post)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return nil, fault.Errorf(fault.Forbidden, "bad X-Twilio-Signature")
	}
	status := form.Get("MessageStatus")
	if status == "" || form.Get("MessageSid") == "" {
		return nil, fault.Errorf(fault.InvalidRequest, "report without MessageSid or MessageStatus")
	}
	detail := "twilio " + status
	if ec := form.Get("ErrorCode"); ec != "" {
		detail += " error " + ec
	}
	switch status {
	case "delivered", "read":
		return &message.Receipt{State: message.Delivered, Detail: detail}, nil
	case "undelivered":
		return &message.Receipt{State: message.Failed, Reason: message.ReasonUndelivered, Detail: detail}, nil
	case "failed", "canceled":
		return &message.Receipt{State: message.Failed, Reason: message.ReasonRejected, Detail: detail}, nil
	}
	return nil, nil // queued, sending, sent, accepted, scheduled: on the way
}

// TwilioSignature is the X-Twilio-Signature of a request to fullURL with the POST parameters post:
// base64(HMAC-SHA1(authToken, fullURL + name1 + value1 + name2 + value2 ...)), names sorted (and a name's
// values sorted).
func TwilioSignature(authToken, fullURL string, post url.Values) string {
	m := hmac.New(sha1.New, []byte(authToken))
	io.WriteString(m, fullURL)
	for _, k := range sortedKeys(post) {
		vals := append([]string(nil), post[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			io.WriteString(m, k)
			io.WriteString(m, v)
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// vonageReport checks the sig parameter when signature_secret is set (VonageSignature; a timestamp
// parameter more than maxSkew away is a replay) and maps a delivery receipt's status.
// https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts
func (g *Sender) vonageReport(ref string, _ *http.Request, form url.Values) (*message.Receipt, error) {
	if g.s.SignatureSecret != "" {
		got := form.Get("sig")
		want := VonageSignature(g.s.SignatureMethod, g.s.SignatureSecret, form)
		if got == "" || subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(strings.ToLower(want))) != 1 {
			return nil, fault.Errorf(fault.Forbidden, "bad sig")
		}
		if ts := form.Get("timestamp"); ts != "" {
			sec, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil, fault.Errorf(fault.InvalidRequest, "bad timestamp %q", ts)
			}
			if d := g.now().Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
				return nil, fault.Errorf(fault.Forbidden, "timestamp %s from now: a replay?", d.Round(time.Second))
			}
		}
	}
	status := form.Get("status")
	if status == "" || form.Get("messageId") == "" {
		return nil, fault.Errorf(fault.InvalidRequest, "receipt without messageId or status")
	}
	if cr := form.Get("client-ref"); cr != "" && cr != ref {
		return nil, fault.Errorf(fault.InvalidRequest, "receipt's client-ref is another message's")
	}
	detail := "vonage " + status
	if ec := form.Get("err-code"); ec != "" && ec != "0" {
		detail += " err-code " + ec
	}
	switch status {
	case "delivered":
		return &message.Receipt{State: message.Delivered, Detail: detail}, nil
	case "expired":
		return &message.Receipt{State: message.Failed, Reason: message.ReasonExpired, Detail: detail}, nil
	case "failed":
		return &message.Receipt{State: message.Failed, Reason: message.ReasonUndelivered, Detail: detail}, nil
	case "rejected":
		return &message.Receipt{State: message.Failed, Reason: message.ReasonRejected, Detail: detail}, nil
	}
	return nil, nil // accepted, buffered, unknown: on the way, or nothing known
}

// VonageSignature is the sig of a signed Vonage request with params (sig itself left out): the string
// "&name=value" for each name in order, '&' and '=' in values replaced by '_'; with method md5hash the
// lowercase hex MD5 of that string followed by the secret, else the uppercase hex HMAC (md5, sha1, sha256,
// sha512) of it keyed by the secret.
// https://developer.vonage.com/en/getting-started/concepts/signing-messages
func VonageSignature(method, secret string, params url.Values) string {
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		if k == "sig" {
			continue
		}
		b.WriteString("&" + k + "=" + strings.NewReplacer("&", "_", "=", "_").Replace(params.Get(k)))
	}
	var h func() hash.Hash
	switch method {
	case SigMD5Hash:
		sum := md5.Sum([]byte(b.String() + secret))
		return hex.EncodeToString(sum[:])
	case SigMD5:
		h = md5.New
	case SigSHA1:
		h = sha1.New
	case SigSHA512:
		h = sha512.New
	default:
		h = sha256.New
	}
	m := hmac.New(h, []byte(secret))
	io.WriteString(m, b.String())
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// refSig signs a custom gateway's report URL for ref: hex HMAC-SHA256(secret, ref).
func refSig(secret, ref string) string {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, ref)
	return hex.EncodeToString(m.Sum(nil))
}

// defaultStatuses map a custom gateway's usual words (and SMPP receipts' stat values) when
// callback_statuses names none.
var defaultStatuses = map[string]string{
	"delivered": StatusDelivered, "delivrd": StatusDelivered,
	"undelivered": StatusUndelivered, "undeliv": StatusUndelivered, "failed": StatusUndelivered,
	"expired": StatusExpired, "rejected": StatusRejected, "rejectd": StatusRejected,
}

// customReport checks the URL's sig (when callback_secret is set) and maps callback_status_field.
func (g *Sender) customReport(ref string, r *http.Request, form url.Values) (*message.Receipt, error) {
	if g.s.CallbackSecret != "" {
		got := r.URL.Query().Get("sig")
		if subtle.ConstantTimeCompare([]byte(got), []byte(refSig(g.s.CallbackSecret, ref))) != 1 {
			return nil, fault.Errorf(fault.Forbidden, "bad sig")
		}
	}
	status := form.Get(g.s.CallbackStatusField)
	if status == "" {
		status = r.URL.Query().Get(g.s.CallbackStatusField)
	}
	if status == "" {
		return nil, fault.Errorf(fault.InvalidRequest, "report without %s", g.s.CallbackStatusField)
	}
	table := defaultStatuses
	if len(g.s.CallbackStatuses) > 0 {
		table = map[string]string{}
		for k, v := range g.s.CallbackStatuses {
			table[strings.ToLower(k)] = v
		}
	}
	detail := "gateway " + strconv.Quote(status)
	switch table[strings.ToLower(status)] {
	case StatusDelivered:
		return &message.Receipt{State: message.Delivered, Detail: detail}, nil
	case StatusUndelivered:
		return &message.Receipt{State: message.Failed, Reason: message.ReasonUndelivered, Detail: detail}, nil
	case StatusExpired:
		return &message.Receipt{State: message.Failed, Reason: message.ReasonExpired, Detail: detail}, nil
	case StatusRejected:
		return &message.Receipt{State: message.Failed, Reason: message.ReasonRejected, Detail: detail}, nil
	}
	return nil, nil
}
