package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"flashotp/message"
)

// maxChallenge bounds the handshake's hub.challenge echoed back (Meta sends a number).
const maxChallenge = 256

// Handshake answers Meta's webhook verification (GET with hub.mode, hub.verify_token, hub.challenge): the
// challenge to echo, and whether mode is subscribe and token the configured verify_token (compared in
// constant time).
func (s *Sender) Handshake(mode, token, challenge string) (string, bool) {
	ok := subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.VerifyToken)) == 1
	if mode != "subscribe" || !ok || challenge == "" || len(challenge) > maxChallenge {
		return "", false
	}
	return challenge, true
}

// Authentic reports whether signature (the X-Hub-Signature-256 header: sha256=<hex>) is the HMAC-SHA256 of
// body under the app secret, compared in constant time.
func (s *Sender) Authentic(body []byte, signature string) bool {
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(s.cfg.AppSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// webhookBody is the part of a WhatsApp Business Account webhook the Sender reads: the message statuses.
type webhookBody struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Statuses []Status `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// Status is one message status of a webhook.
type Status struct {
	ID                    string `json:"id"` // the wamid
	Status                string `json:"status"`
	Timestamp             string `json:"timestamp"` // Unix seconds
	RecipientID           string `json:"recipient_id"`
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`
	Errors                []struct {
		Code      int    `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	} `json:"errors"`
}

// Statuses reads a webhook body (already Authentic) and reports its message statuses as Receipts:
// delivered, read, and failed with its reason; sent says nothing the send's Result did not. A status of
// a message the engine cannot name (no biz_opaque_callback_data, a wamid it does not know) is skipped.
// It returns the number of Receipts reported, or an error wrapping ErrPayload for a body that is not a
// webhook's JSON (nothing is reported then).
func (s *Sender) Statuses(body []byte) (int, error) {
	var w webhookBody
	if err := json.Unmarshal(body, &w); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if w.Object != "" && w.Object != "whatsapp_business_account" {
		return 0, fmt.Errorf("%w: object %q", ErrPayload, w.Object)
	}
	var receipts []message.Receipt
	for _, e := range w.Entry {
		for _, c := range e.Changes {
			for _, st := range c.Value.Statuses {
				if r, ok := s.receipt(st); ok {
					receipts = append(receipts, r)
				}
			}
		}
	}
	for _, r := range receipts {
		s.receipts(r)
	}
	return len(receipts), nil
}

// receipt makes the Receipt of one status, if it says something and names a message of ours.
func (s *Sender) receipt(st Status) (message.Receipt, bool) {
	var r message.Receipt
	switch st.Status {
	case "delivered":
		r.State = message.Delivered
	case "read":
		r.State = message.Read
	case "failed":
		r.State, r.Reason = message.Failed, message.ReasonUndelivered
		if len(st.Errors) > 0 {
			e := st.Errors[0]
			if reason, _ := Classify(0, e.Code); reason != message.ReasonUnavailable {
				r.Reason = reason
			}
			r.Detail = fmt.Sprintf("error %d %s", e.Code, firstOf(e.Title, e.Message, e.ErrorData.Details))
			if len(r.Detail) > 300 {
				r.Detail = r.Detail[:300] + "..."
			}
		}
	default: // sent, and whatever Meta adds (deleted, warning, ...)
		return r, false
	}
	r.Ref = st.BizOpaqueCallbackData
	if r.Ref == "" {
		ref, ok := s.ref(st.ID)
		if !ok {
			s.log.Debug("whatsapp status of an unknown message", "wamid", st.ID, "status", st.Status)
			return r, false
		}
		r.Ref = ref
	}
	if sec, err := strconv.ParseInt(st.Timestamp, 10, 64); err == nil && sec > 0 {
		r.At = time.Unix(sec, 0).UTC()
	}
	return r, true
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
