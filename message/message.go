// Package message holds the words of a text delivered outside the SIP trunk (SPEC section 8): an SMS through
// an SMSC (SMPP) or an HTTP SMS gateway, a WhatsApp authentication template, an email. otp builds a Message
// for a step and hands it to the Sender of its channel; the Sender answers with a Result when its carrier
// took or refused it, and later reports what the carrier says became of it (a delivery receipt, a status
// webhook) as a Receipt naming the same Ref. The package imports nothing of flashotp's.
package message

import (
	"context"
	"math/rand/v2"
	"time"
)

// Message is one text to deliver. It holds the code in clear (a WhatsApp template and some gateways take it
// as its own parameter): a Sender keeps it only while it sends, and never logs it.
type Message struct {
	// Ref names the verification's step: a Sender passes it back in its Receipts (in an SMPP receipt's
	// bookkeeping, a gateway's callback URL, WhatsApp's biz_opaque_callback_data).
	Ref     string
	App     string // the app's ID
	Channel string // sms, whatsapp or email
	To      string // E.164 with '+' (sms, whatsapp), or an email address (email)
	From    string // the sender: a number, an alphanumeric sender ID, or an email address; empty: the Sender's own
	Text    string // the rendered text (sms, whatsapp's fallback text, email's text part)
	HTML    string // email: the rendered HTML part; empty: text only
	Subject string // email
	Code    string // the code alone, for templates that take it as a parameter (WhatsApp)
	Locale  string // the BCP 47 locale the text was rendered in
}

// State is where a message stands as its carrier tells it.
type State string

// Message states. Sent: the carrier took it; Delivered (and Read): it reached the user; Failed: it never
// will.
const (
	Sent      State = "sent"
	Delivered State = "delivered"
	Read      State = "read"
	Failed    State = "failed"
)

// Failure reasons a Sender or a receipt gives (the step's reason).
const (
	ReasonRejected    = "rejected"     // the carrier refused it (a bad number, a bad sender, a policy)
	ReasonUndelivered = "undelivered"  // a receipt said it could not be delivered
	ReasonExpired     = "expired"      // a receipt said its validity ran out before delivery
	ReasonUnavailable = "unavailable"  // the carrier could not be reached, or answered with a temporary error until the step's time ran out
	ReasonAuthFailed  = "auth_failed"  // the carrier refused the engine's credentials
	ReasonBadResponse = "bad_response" // the carrier answered with something the engine cannot read
)

// Result is what a Sender's carrier said of a Message when it was handed over.
type Result struct {
	State      State  // Sent or Failed
	Reason     string // why it failed
	Detail     string // what the carrier said, for the log and the step (never the code or a secret)
	ProviderID string // the carrier's ID of the message, when it gave one
	Segments   int    // SMS parts submitted, when known
	At         time.Time
}

// Receipt is what a carrier reported of a message after it was sent: a delivery receipt, a status webhook.
type Receipt struct {
	Ref    string // the Message's Ref
	State  State  // Delivered, Read or Failed
	Reason string // why it failed
	Detail string
	At     time.Time
}

// Sender delivers Messages over one channel. Send returns when the carrier took or refused m, within ctx;
// it must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) Result
}

// Receipts takes the Receipts a Sender gets; otp.Service.MessageReceipt is one.
type Receipts func(Receipt)

// Retry calls try (with its try number, from 1) until it gives a result that is not temporary, and returns
// that result, the number of tries and ok true. Between tries it waits from first, doubling up to last, each
// wait between half and all of that (jitter: senders retrying together do not stay in step). If ctx ends
// during a wait, it returns the last temporary result and ok false. The senders' retry of a carrier's
// temporary failure (5xx, throttling, a lost connection) within their Send's deadline.
func Retry(ctx context.Context, first, last time.Duration, try func(n int) (res Result, temporary bool)) (res Result, tries int, ok bool) {
	wait := first
	for n := 1; ; n++ {
		res, temporary := try(n)
		if !temporary {
			return res, n, true
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return res, n, false
		case <-t.C:
		}
		wait = min(2*wait, last)
	}
}
