package otp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"flashotp/apps"
	"flashotp/call"
	"flashotp/fault"
	"flashotp/internal/apptest"
	"flashotp/internal/fakes"
	"flashotp/internal/storetest"
	"flashotp/internal/testwait"
	"flashotp/message"
	"flashotp/otp"
)

// codes records the codes the voice channel was asked to speak, by locale.
type codes struct {
	dial *fakes.Dialer
	mu   sync.Mutex
	sent []string // "channel locale code"
}

// smsCode finds a 6-digit code in a message.
var smsCode = regexp.MustCompile(`\b[0-9]{6}\b`)

func (c *codes) add(channel, locale, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, channel+" "+locale+" "+code)
}

// last returns the code last given to channel: for sms, the digits of the newest message the dialer got.
func (c *codes) last(t *testing.T, channel string) string {
	t.Helper()
	if channel == otp.ChannelSMS {
		for _, r := range slices.Backward(c.dial.Requests()) {
			if r.Kind == call.KindMessage {
				return smsCode.FindString(r.Text)
			}
		}
		t.Fatal("no message was sent")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.sent) - 1; i >= 0; i-- {
		if f := strings.Fields(c.sent[i]); f[0] == channel {
			return f[2]
		}
	}
	t.Fatalf("no %s code was made", channel)
	return ""
}

func (c *codes) Prompt(locale, code string) ([]byte, error) {
	c.add(otp.ChannelVoice, locale, code)
	return []byte("audio:" + code), nil
}

func (c *codes) Match(string) string { return "en" }

// newChannelEnv is a service whose app demo may use every channel, with tune applied, webhooks to n, and
// voice and sms channels whose codes land in the returned codes.
func newChannelEnv(t *testing.T, n *fakeNotifier, tune func(a *apps.App), tuneConfig ...func(c *otp.Config)) (*env, *codes) {
	t.Helper()
	e := &env{db: storetest.Open(t), dial: &fakes.Dialer{}, clock: newClock()}
	e.pools = newRegistry(t, e.db, e.clock.Now, 4, 10000, map[string]string{"demo": "+44207946XXXX"})
	demo := apptest.App("demo", "demo-key", "demo-secret")
	demo.WebhookURL = "http://127.0.0.1:9/hooks"
	demo.Channels = []string{otp.ChannelFlashCall, otp.ChannelVoice, otp.ChannelSMS}
	demo.AndroidAppHash = "FA+9qCX9VSu"
	demo.Workflow = []apps.Step{
		{Channel: otp.ChannelFlashCall, Timeout: apps.Duration(20 * time.Second)},
		{Channel: otp.ChannelSMS, Timeout: apps.Duration(60 * time.Second)},
		{Channel: otp.ChannelVoice},
	}
	if tune != nil {
		tune(&demo.App)
	}
	reg := apptest.Open(t, e.db, apps.Defaults{CodeLength: 4, TTL: testTTL, MaxAttempts: testMaxAttempts}, nil, demo)
	c := &codes{dial: e.dial}
	cfg := otp.Config{Apps: reg, Dialer: e.dial, Notifier: n, Now: e.clock.Now, Key: e.db.Key(), MinCodeSpace: 10000,
		Voice: otp.VoiceChannel{Prompts: c, AnswerTimeout: 30 * time.Second, Repeat: 2},
		SMS:   otp.SMSChannel{Via: "trunk", Sender: "FlashOTP"},
	}
	for _, f := range tuneConfig {
		f(&cfg)
	}
	e.svc = otp.New(cfg, e.db.Verifications(), e.pools, quietLog())
	return e, c
}

// end reports the outcome res of verification id's newest call or message.
func (e *env) end(id string, res call.Result) {
	now := e.clock.Now()
	if res.StartedAt.IsZero() {
		res.StartedAt = now.Add(-30 * time.Millisecond)
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = now
	}
	e.svc.CallEnded(e.ref(id), "phone", "", res)
}

func (e *env) verify(t *testing.T, id, code string) error {
	t.Helper()
	_, err := e.svc.Verify(t.Context(), otp.VerifyRequest{AppID: "demo", VerificationID: id, Code: code})
	return err
}

func steps(v otp.Verification) string {
	var s []string
	for _, st := range v.Steps {
		s = append(s, st.Channel+":"+string(st.State))
	}
	return strings.Join(s, ",")
}

func TestVoiceStep(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelVoice, Locale: "pt-BR"})
	if err != nil {
		t.Fatalf("Send voice: %v", err)
	}
	r := e.dial.Last(t)
	code := c.last(t, otp.ChannelVoice)
	if r.Kind != call.KindVoice || string(r.Prompt) != "audio:"+code || r.AnswerTimeout != 30*time.Second || r.Repeat != 2 {
		t.Fatalf("dialer got %+v, want a voice call speaking the code", r)
	}
	if len(code) != 6 || v.CodeLength != 6 || steps(v) != "voice:queued" {
		t.Fatalf("code %q, verification %+v: want a 6-digit voice step", code, v)
	}
	if !slices.Contains(c.sent, "voice pt-BR "+code) {
		t.Errorf("prompt asked for %v, want the send's locale pt-BR", c.sent)
	}
	now := e.clock.Now()
	e.end(v.ID, call.Result{State: call.StateAnswered, SIPCode: 200, Responded: true, Provisional: true, Rang: true,
		RingingAt: now.Add(-8 * time.Second), AnsweredAt: now.Add(-6 * time.Second), Played: true, Codec: "PCMU"})
	st := e.status(t, v.ID)
	if steps(st) != "voice:delivered" || st.Status != otp.StatusPending || st.Call.State != call.StateAnswered {
		t.Fatalf("after the prompt played: %s, %s, call %s", steps(st), st.Status, st.Call.State)
	}
	if err := e.verify(t, v.ID, wrongCode(code)); !errors.Is(err, fault.InvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if err := e.verify(t, v.ID, code); err != nil {
		t.Fatalf("voice code: %v", err)
	}
}

// flashcall → sms → voice against a phone that never rings but takes messages: the flash call fails, the
// SMS goes at once, its code approves, and no voice call is made.
func TestWorkflowFallsBack(t *testing.T) {
	n := &fakeNotifier{}
	e, c := newChannelEnv(t, n, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatalf("Send auto: %v", err)
	}
	if r := e.dial.Last(t); r.Kind != call.KindFlash || steps(v) != "flashcall:queued" {
		t.Fatalf("first step: %+v, %s", r, steps(v))
	}
	// The whole workflow fits in expires_at: 20s + 60s of step timeouts, then the TTL.
	if want := v.CreatedAt.Add(80*time.Second + testTTL); !v.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %s, want %s", v.ExpiresAt, want)
	}
	e.end(v.ID, call.Result{State: call.StateFailed, Reason: call.ReasonNoRing})
	r := e.dial.Last(t)
	code := c.last(t, otp.ChannelSMS)
	if r.Kind != call.KindMessage || r.CLI != "FlashOTP" || !strings.HasPrefix(r.Text, code+" is your demo") || r.ID == v.ID {
		t.Fatalf("second step: %+v, want a message holding the code from the sender", r)
	}
	if !strings.HasSuffix(r.Text, "\nFA+9qCX9VSu") {
		t.Errorf("message %q does not end with the app's Android hash on its own line", r.Text)
	}
	st := e.status(t, v.ID)
	if steps(st) != "flashcall:failed,sms:queued" || st.Status != otp.StatusPending {
		t.Fatalf("after the flash call failed: %s, %s", steps(st), st.Status)
	}
	e.end(v.ID, call.Result{State: call.StateSent, SIPCode: 202, Responded: true})
	st = e.status(t, v.ID)
	if steps(st) != "flashcall:failed,sms:sent" || st.Steps[1].Segments != 1 || st.Steps[1].Encoding != "gsm7" || st.Steps[1].Via != "trunk" {
		t.Fatalf("after the MESSAGE: %+v", st.Steps)
	}
	if err := e.verify(t, v.ID, code); err != nil {
		t.Fatalf("sms code: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(e.dial.Requests()); got != 2 {
		t.Errorf("%d calls and messages, want 2: no voice call after the approval", got)
	}
	if got := strings.Join(n.events(), ","); got != "call_failed,step_started,message_sent,approved" {
		t.Errorf("webhooks %s", got)
	}
	rows, err := e.svc.Reports(t.Context(), "demo", e.clock.Now().Add(-time.Hour), e.clock.Now(), otp.GroupChannel)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows {
		got = append(got, fmt.Sprintf("%s sent=%d failed=%d approved=%d", row.Key, row.Sent, row.Failed, row.Approved))
	}
	if strings.Join(got, "; ") != "flashcall sent=1 failed=1 approved=0; sms sent=1 failed=0 approved=1" {
		t.Errorf("reports by channel: %s", strings.Join(got, "; "))
	}
}

// A MESSAGE refused with 488 moves on to voice at once; a step whose timeout passes without an approval
// moves on too (the sweeper); when the last step fails and no code went out, the verification fails.
func TestWorkflowRefusedAndTimeout(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	// The flash call rings: delivered. No approval within its 20 s: the SMS goes.
	now := e.clock.Now()
	e.end(v.ID, call.Result{State: call.StateMissed, SIPCode: 487, Rang: true, Responded: true, Provisional: true, RingingAt: now.Add(-10 * time.Millisecond)})
	e.clock.Advance(19 * time.Second)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(e.dial.Requests()); got != 1 {
		t.Fatalf("%d requests before the step's timeout, want 1", got)
	}
	e.clock.Advance(2 * time.Second)
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.dial.Last(t); r.Kind != call.KindMessage {
		t.Fatalf("after the flash step's timeout: %+v, want the message", r)
	}
	// 488: the voice call goes at once.
	e.end(v.ID, call.Result{State: call.StateFailed, SIPCode: 488, Reason: call.ReasonClientError, Responded: true})
	if r := e.dial.Last(t); r.Kind != call.KindVoice {
		t.Fatalf("after the 488: %+v, want the voice call", r)
	}
	st := e.status(t, v.ID)
	if steps(st) != "flashcall:delivered,sms:failed,voice:queued" || st.Steps[1].SIPCode != 488 {
		t.Fatalf("steps %+v", st.Steps)
	}
	// The refused SMS's code never arrived: it does not approve (a wrong code). The flash code, which did
	// arrive, was retired when the 6-digit codes came: 10^4 and 10^6 codes together are below
	// min_code_space.
	if err := e.verify(t, v.ID, c.last(t, otp.ChannelSMS)); !errors.Is(err, fault.InvalidCode) {
		t.Errorf("the refused message's code: %v, want invalid_code", err)
	}
	// Voice not answered: the last step failed, and no code is live: the verification fails.
	e.end(v.ID, call.Result{State: call.StateFailed, SIPCode: 487, Reason: call.ReasonNoAnswer, Responded: true, Provisional: true, Rang: true,
		RingingAt: e.clock.Now().Add(-time.Second)})
	st = e.status(t, v.ID)
	if steps(st) != "flashcall:delivered,sms:failed,voice:failed" || st.Steps[2].Reason != "no_answer" || st.Status != otp.StatusFailed {
		t.Fatalf("after no answer: %+v %s", st.Steps, st.Status)
	}
	if err := e.verify(t, v.ID, c.last(t, otp.ChannelVoice)); !errors.Is(err, fault.Undeliverable) {
		t.Errorf("verify after every step failed: %v, want undeliverable", err)
	}
}

// Bad input: each a clear 400 naming the field; nothing is stored, nothing sent.
func TestSendChannelRejects(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.Channels = []string{otp.ChannelFlashCall, otp.ChannelSMS}
		a.Workflow = nil
	})
	for _, tt := range []struct {
		req  otp.SendRequest
		want string
	}{
		{otp.SendRequest{Channel: "pigeon"}, "channel: want one of flashcall, voice, sms, whatsapp, email, inbound, auto"},
		{otp.SendRequest{Channel: otp.ChannelVoice}, `channel: app "demo" may not use voice`},
		{otp.SendRequest{Channel: otp.ChannelAuto}, `channel: auto runs the app's workflow, and app "demo" has none`},
		{otp.SendRequest{Channel: otp.ChannelSMS, Locale: "not a locale"}, "locale:"},
		{otp.SendRequest{Channel: otp.ChannelSMS, CodeLength: 12}, "code_length:"},
	} {
		tt.req.AppID, tt.req.Recipient = "demo", usRecipient
		_, err := e.svc.Send(t.Context(), tt.req)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Code != fault.InvalidRequest || !strings.Contains(fe.Message, tt.want) {
			t.Errorf("%+v: %v, want invalid_request %q", tt.req, err, tt.want)
		}
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d records stored after refused sends", n)
	}
	if n := len(e.dial.Requests()); n != 0 {
		t.Errorf("%d calls sent after refused sends", n)
	}
}

// A resend with a channel moves the verification to it: a new code, the old one dead.
func TestResendMovesChannel(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, nil)
	v, cli := e.send(t)
	e.missed(v.ID)
	e.clock.Advance(31 * time.Second)
	r, err := e.svc.Resend(t.Context(), otp.ResendRequest{AppID: "demo", VerificationID: v.ID, Channel: otp.ChannelSMS})
	if err != nil {
		t.Fatalf("resend to sms: %v", err)
	}
	if steps(r) != "flashcall:delivered,sms:queued" || e.dial.Last(t).Kind != call.KindMessage {
		t.Fatalf("after the resend: %s", steps(r))
	}
	if err := e.verify(t, v.ID, codeOf(cli)); !errors.Is(err, fault.InvalidCode) {
		t.Errorf("the flash code after a resend: %v, want invalid_code", err)
	}
	e.end(v.ID, call.Result{State: call.StateSent, SIPCode: 200, Responded: true})
	if err := e.verify(t, v.ID, c.last(t, otp.ChannelSMS)); err != nil {
		t.Errorf("the sms code: %v", err)
	}
}

// The send's locale picks the nearest template; the app's own template comes first.
func TestSMSLocale(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.Templates = map[string]map[string]string{otp.ChannelSMS: {"fr": "Code {{.Code}} pour {{.App}}"}}
	})
	for _, tt := range []struct{ locale, want, prefix string }{
		{"pt-BR", "pt", ""},
		{"fr-CA", "fr", "Code "},
		{"", "en", ""},
	} {
		v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS, Locale: tt.locale})
		if err != nil {
			t.Fatalf("send with locale %q: %v", tt.locale, err)
		}
		text := e.dial.Last(t).Text
		if v.Steps[0].Locale != tt.want || !strings.HasPrefix(text, tt.prefix) || !strings.Contains(text, c.last(t, otp.ChannelSMS)) {
			t.Errorf("locale %q: step locale %q, text %q; want %s", tt.locale, v.Steps[0].Locale, text, tt.want)
		}
	}
}

// A record stored before steps (one code_mac, no steps) still verifies, and its call's outcome still lands.
func TestRecordBeforeSteps(t *testing.T) {
	e := newEnv(t)
	v, _ := e.send(t)
	id := v.ID
	m := hmac.New(sha256.New, e.db.Key())
	m.Write([]byte(id + "\x00" + "4321"))
	legacy := fmt.Sprintf(`{"verification_id":%q,"appid":"demo","recipient":%q,"channel":"flashcall","status":"pending",`+
		`"code_length":4,"cli_prefix":"+44207946","attempts":0,"attempts_remaining":5,"resends":0,`+
		`"created_at":%q,"expires_at":%q,"call":{"state":"queued"},"code_mac":%q,"max_attempts":5,"country":"US","sent_at":%q}`,
		id, usRecipient, v.CreatedAt.Format(time.RFC3339Nano), v.ExpiresAt.Format(time.RFC3339Nano),
		base64.StdEncoding.EncodeToString(m.Sum(nil)), v.CreatedAt.Format(time.RFC3339Nano))
	if err := e.db.Verifications().Update(t.Context(), func(tx otp.Tx) error { return tx.PutVerification(id, []byte(legacy)) }); err != nil {
		t.Fatal(err)
	}
	e.missed(id)
	if st := e.status(t, id); st.Call.State != call.StateMissed || steps(st) != "flashcall:delivered" {
		t.Fatalf("old record after its call: %+v", st)
	}
	if err := e.verify(t, id, "1234"); !errors.Is(err, fault.InvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if err := e.verify(t, id, "+442079464321"); err != nil {
		t.Fatalf("the old record's code: %v", err)
	}
}

// fakeSender hands each message to got and answers with res (Sent when zero).
type fakeSender struct {
	mu  sync.Mutex
	got []message.Message
	res message.Result
}

func (f *fakeSender) Send(_ context.Context, m message.Message) message.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	if f.res.State == "" {
		return message.Result{State: message.Sent, ProviderID: fmt.Sprint("p", len(f.got))}
	}
	return f.res
}

func (f *fakeSender) last(t *testing.T) message.Message {
	t.Helper()
	var m message.Message
	testwait.For(t, 5*time.Second, "a message to the sender", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.got) == 0 {
			return false
		}
		m = f.got[len(f.got)-1]
		return true
	})
	return m
}

// newSenderEnv is newChannelEnv with SMS through an SMSC (a Sender) and email, each a fakeSender.
func newSenderEnv(t *testing.T, n *fakeNotifier, tune func(a *apps.App)) (*env, *fakeSender, *fakeSender) {
	t.Helper()
	smsc, mail := &fakeSender{}, &fakeSender{}
	e, _ := newChannelEnv(t, n, func(a *apps.App) {
		a.Channels = []string{otp.ChannelFlashCall, otp.ChannelVoice, otp.ChannelSMS, otp.ChannelEmail}
		a.Workflow = []apps.Step{
			{Channel: otp.ChannelSMS, Timeout: apps.Duration(time.Minute)},
			{Channel: otp.ChannelEmail, Timeout: apps.Duration(time.Minute)},
			{Channel: otp.ChannelVoice},
		}
		a.Templates = map[string]map[string]string{otp.ChannelEmail: {"en": "Your code: {{.Code}}"}}
		if tune != nil {
			tune(a)
		}
	}, func(c *otp.Config) {
		c.SMS.Via = "smpp"
		c.Senders = map[string]message.Sender{otp.ChannelSMS: smsc, otp.ChannelEmail: mail}
	})
	return e, smsc, mail
}

func (e *env) stepsAre(t *testing.T, id, want string) otp.Verification {
	t.Helper()
	var v otp.Verification
	testwait.For(t, 5*time.Second, "steps "+want, func() bool {
		v = e.status(t, id)
		return steps(v) == want
	})
	return v
}

// An SMS through an SMSC: the sender gets the message with its step's ref and the code; the SMSC's
// acceptance makes the step sent, its receipt delivered; the code verifies.
func TestSenderSMS(t *testing.T) {
	n := &fakeNotifier{}
	e, smsc, _ := newSenderEnv(t, n, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS})
	if err != nil {
		t.Fatal(err)
	}
	m := smsc.last(t)
	if m.Ref != v.ID || m.To != usRecipient || m.Channel != "sms" || len(m.Code) != 6 || !strings.HasPrefix(m.Text, m.Code+" is your demo") {
		t.Fatalf("message %+v", m)
	}
	if len(e.dial.Requests()) != 0 {
		t.Fatalf("an SMS through the SMSC went to the dialer too")
	}
	e.stepsAre(t, v.ID, "sms:sent")
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Delivered, At: e.clock.Now()})
	st := e.stepsAre(t, v.ID, "sms:delivered")
	if st.Steps[0].Via != "smpp" || st.Steps[0].DeliveredAt == nil {
		t.Errorf("step %+v", st.Steps[0])
	}
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Failed, Reason: message.ReasonExpired}) // late and contradicting: ignored
	e.stepsAre(t, v.ID, "sms:delivered")
	if err := e.verify(t, v.ID, m.Code); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got := strings.Join(n.events(), ","); got != "message_sent,message_delivered,approved" {
		t.Errorf("webhooks %s", got)
	}
}

// sms → email → voice: the SMSC refuses the SMS, the email goes at once; a bounce (a failed receipt) moves
// on to the voice call; the voice code approves.
func TestSenderWorkflow(t *testing.T) {
	e, smsc, mail := newSenderEnv(t, &fakeNotifier{}, nil)
	smsc.res = message.Result{State: message.Failed, Reason: message.ReasonRejected, Detail: "ESME_RINVDSTADR"}
	_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err == nil || !strings.Contains(err.Error(), "email: required") {
		t.Fatalf("auto with an email step and no address: %v", err)
	}
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto, Email: "user@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	m := mail.last(t)
	if m.To != "user@example.com" || m.Text != "Your code: "+m.Code || m.Ref == v.ID {
		t.Fatalf("email %+v", m)
	}
	st := e.stepsAre(t, v.ID, "sms:failed,email:sent")
	if st.Steps[0].Reason != "rejected" {
		t.Errorf("sms step %+v", st.Steps[0])
	}
	e.svc.MessageReceipt(message.Receipt{Ref: m.Ref, State: message.Failed, Reason: message.ReasonUndelivered})
	e.stepsAre(t, v.ID, "sms:failed,email:failed,voice:queued")
	if err := e.verify(t, v.ID, m.Code); !errors.Is(err, fault.InvalidCode) {
		t.Errorf("the bounced email's code: %v, want invalid_code", err)
	}
	if r := e.dial.Last(t); r.Kind != call.KindVoice {
		t.Fatalf("dialer got %+v, want the voice call", r)
	}
}

// An email-only send takes the address as its recipient; a bad address or header text is refused, nothing
// stored.
func TestSenderEmailRecipient(t *testing.T) {
	e, _, mail := newSenderEnv(t, &fakeNotifier{}, nil)
	for _, bad := range []string{"not-an-address", "a@b", "User <u@example.com>", "u@example.com\r\nBcc: x@example.com", "u@exa mple.com"} {
		_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: bad, Channel: otp.ChannelEmail})
		if !errors.Is(err, fault.InvalidRecipient) {
			t.Errorf("email to %q: %v, want invalid_recipient", bad, err)
		}
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("%d records after refused sends", n)
	}
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "user@example.com", Channel: otp.ChannelEmail})
	if err != nil {
		t.Fatal(err)
	}
	if v.Recipient != "user@example.com" || mail.last(t).To != "user@example.com" {
		t.Fatalf("verification %+v", v)
	}
	e.stepsAre(t, v.ID, "email:sent")
	if err := e.verify(t, v.ID, mail.last(t).Code); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// A channel's own rate limit: a send over it beyond the limit is 429 with the channel as its scope; a
// workflow's step beyond it fails rate_limited and the next step goes.
func TestChannelRateLimit(t *testing.T) {
	e, _ := newChannelEnv(t, &fakeNotifier{}, func(a *apps.App) {
		a.RateLimits = map[string]apps.Limit{otp.ChannelSMS: {Limit: 1, Window: apps.Duration(time.Hour)}}
	})
	if _, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552672", Channel: otp.ChannelSMS})
	if fe := wantCode(t, err, fault.RateLimited); fe.Scope != otp.ChannelSMS {
		t.Errorf("scope %q, want sms", fe.Scope)
	}
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: "+14155552673", Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatalf("a flash call is not under the sms limit: %v", err)
	}
	e.end(v.ID, call.Result{State: call.StateFailed, Reason: call.ReasonNoRing})
	st := e.stepsAre(t, v.ID, "flashcall:failed,sms:failed,voice:queued")
	if st.Steps[1].Reason != "rate_limited" {
		t.Errorf("sms step %+v, want rate_limited", st.Steps[1])
	}
}

// blockingSender holds each Send until release is closed or its ctx ends.
type blockingSender struct{ release chan struct{} }

func (b blockingSender) Send(ctx context.Context, m message.Message) message.Result {
	select {
	case <-b.release:
		return message.Result{State: message.Sent}
	case <-ctx.Done():
		return message.Result{State: message.Failed, Reason: message.ReasonUnavailable}
	}
}

// Wait holds a shutdown until the messages being handed over have their outcome recorded, or its ctx ends.
func TestWaitForMessages(t *testing.T) {
	b := blockingSender{release: make(chan struct{})}
	e, _ := newChannelEnv(t, &fakeNotifier{}, nil, func(c *otp.Config) {
		c.SMS.Via = "smpp"
		c.Senders = map[string]message.Sender{otp.ChannelSMS: b}
	})
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelSMS})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.svc.Wait(ctx); err == nil {
		t.Fatal("Wait returned while a message was still being handed over")
	}
	close(b.release)
	if err := e.svc.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, v.ID); steps(st) != "sms:sent" {
		t.Errorf("after Wait: %s, want the outcome recorded", steps(st))
	}
}

// A flash step ended by a restart (or by the engine that takes a dead engine's calls over) is a step that
// failed to deliver: the workflow's next step is due at once, and the sweeper starts it, well before the
// flash step's timeout.
func TestWorkflowGoesOnAfterInterrupt(t *testing.T) {
	e, c := newChannelEnv(t, &fakeNotifier{}, nil)
	v, err := e.svc.Send(t.Context(), otp.SendRequest{AppID: "demo", Recipient: usRecipient, Channel: otp.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Recover(t.Context()); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want the flash call ended", n, err)
	}
	if st := e.status(t, v.ID); steps(st) != "flashcall:failed" || st.Steps[0].Reason != "interrupted" {
		t.Fatalf("after Recover: %s (%s)", steps(st), st.Steps[0].Reason)
	}
	e.clock.Advance(time.Second) // not the flash step's 20 s timeout
	if _, err := e.svc.SweepExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := e.status(t, v.ID)
	if steps(st) != "flashcall:failed,sms:queued" || st.Status != otp.StatusPending {
		t.Fatalf("after the sweep: %s, %s; want the sms step started", steps(st), st.Status)
	}
	if err := e.verify(t, v.ID, c.last(t, otp.ChannelSMS)); err != nil {
		t.Errorf("the sms step's code: %v", err)
	}
}
