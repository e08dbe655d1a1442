package sip

import (
	"context"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"

	"flashotp/call"
)

var (
	dialedRe = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)
	cliRe    = regexp.MustCompile(`^\+?[0-9]{4,16}$`)
)

// Dial places the flash call and returns its outcome. progress, if not nil, is called with call.StateDialing
// once the INVITE is out and call.StateRinging (after the CANCEL, when ring_time is 0) at the first 180/183, from Dial's goroutine. Cancelling ctx
// ends the call early: CANCEL if it may, else the call fails as interrupted. A call that rang is then
// missed, as it would be after ring_time; one that had only a 100 Trying fails as interrupted. Dial never waits longer than
// DialTimeout + RingTime + CancelGuard (plus a short BYE) whatever the trunk does.
//
// A voice call (call.KindVoice) does not cancel at the ring: it waits for the answer up to AnswerTimeout
// from the first provisional response (CANCEL after it: failed no_answer), ACKs the 200, plays the Prompt
// over RTP from the media socket as the answer's codec (PCMU or PCMA), replays it for each DTMF 1 up to
// Repeat times, and hangs up with BYE (voice.go). It is answered; Played says whether the prompt ran to
// its end. Cancelling ctx while it plays hangs up at once: failed, interrupted.
//
// A Request of call.KindMessage is no call: Dial sends its Text in a SIP MESSAGE instead (sendMessage).
func (u *UA) Dial(ctx context.Context, c call.Request, progress func(call.State, time.Time)) (res call.Result) {
	if c.Kind == call.KindMessage {
		return u.sendMessage(ctx, c, progress)
	}
	if progress == nil {
		progress = func(call.State, time.Time) {}
	}
	res.StartedAt = time.Now()
	defer func() { res.EndedAt = time.Now() }()
	if !dialedRe.MatchString(c.To) || !cliRe.MatchString(c.CLI) {
		// Upstream checks should make this impossible; it guards SIP headers all the same.
		u.log.Error("refusing call: a number is not digits")
		res.State, res.Reason = call.Outcome(call.Facts{Refused: true})
		return res
	}

	inv, err := u.newInvite(c)
	if err != nil {
		res.State, res.Reason = call.Outcome(call.Facts{}) // not sent: no response
		return res
	}
	res.CallID = inv.CallID().Value()
	client := u.clientFor(c.Transport)
	tx, icmp, unwatch, err := u.begin(ctx, client, inv, c.Transport)
	defer unwatch()
	if err != nil {
		u.log.Warn("invite not sent", "call_id", res.CallID, "target", c.Target, "err", err)
		res.State, res.Reason = call.Outcome(call.Facts{})
		return res
	}
	progress(call.StateDialing, res.StartedAt)

	d := &dial{ua: u, client: client, call: c, inv: inv, tx: tx, res: &res, stray: make(chan *sipgosip.Response, 4), icmp: icmp,
		cleanup: context.WithoutCancel(ctx)}
	u.calls.Store(res.CallID, d.stray)
	if c.Kind == call.KindVoice {
		// From before the answer: the callee may hang up the moment its 200 is ACKed.
		d.hungUp = make(chan struct{}, 1)
		u.byes.Store(res.CallID, d.hungUp)
		defer u.byes.Delete(res.CallID)
	}
	defer d.stopTimers()
	defer d.stopMedia()
	d.run(ctx, progress)
	if d.answer != nil {
		d.play(ctx) // a voice call answered: the prompt, then BYE
	}
	res.SIPCode, res.Rang, res.Provisional = d.facts.Final, d.facts.Rang, d.facts.Provisional
	res.State, res.Reason = call.Outcome(d.facts)
	if d.cancelTx != nil {
		// Its 200 may never come; a transaction nobody reads would hold sipgo's goroutines forever.
		d.cancelTx.Terminate()
	}
	u.watchLateAnswer(d) // first: stray looks there first, so no response falls between
	if res.State != call.StateAnswered {
		// Ended unanswered, given up (no ring in time, no 487 after the CANCEL, shutdown) or with a final
		// response: a 200 may still come. After a final response the INVITE transaction would swallow it (a
		// fork's 200 that crossed the CANCEL, which RFC 3261 16.7 has proxies forward even after the 487), so
		// the transaction ends here and ended takes the 200, and the final response's retransmissions.
		d.tx.Terminate()
	}
	u.calls.Delete(res.CallID)
	return res
}

// cleanupTimeout bounds each request that cleans up after a call: a CANCEL's sending, a BYE's answer.
const cleanupTimeout = 4 * time.Second

// dial is the state of one call while Dial runs it. Only Dial's goroutine touches it, but for lateMu's.
type dial struct {
	ua     *UA
	client *sipgo.Client
	call   call.Request
	// cleanup is Dial's context without its cancellation: the CANCEL, and the BYE of a 200 (also one that
	// comes after Dial returned), must go out after the caller gave up. Each takes cleanupTimeout.
	cleanup context.Context
	inv     *sipgosip.Request
	tx      sipgosip.ClientTransaction
	res     *call.Result
	// stray receives responses of this call that matched no transaction.
	stray chan *sipgosip.Response
	// icmp receives the ICMP errors of this call's UDP requests (nil over TCP and TLS).
	icmp <-chan error

	// facts is what happened on the wire, for call.Outcome once the call ends.
	facts     call.Facts
	authTried bool
	cancelTx  sipgosip.ClientTransaction

	dialTimer, ringTimer, guardTimer *time.Timer
	// answerTimer bounds a voice call's wait for the answer, from its first provisional response.
	answerTimer *time.Timer
	// answer is the 2xx that answered a voice call, once it came: Dial plays the prompt to its dialog.
	answer *sipgosip.Response
	// hungUp receives the callee's BYE of a voice call.
	hungUp chan struct{}

	// The INVITE transaction's retransmission hook and late responses reach the call from sipgo's goroutines,
	// also after Dial returned: lateMu guards what they change.
	lateMu     sync.Mutex
	dialogs    map[string]*sipgosip.Request // the ACK of each 2xx dialog hung up, by its To tag
	finalAcked time.Time                    // when a final response that came after the call ended was ACKed

	media     *atomic.Uint64 // early media packets from the address the callee's SDP gave
	mediaStop func()
}

func (d *dial) stopMedia() {
	if d.mediaStop != nil {
		d.mediaStop()
		d.res.EarlyMediaPackets = d.media.Load()
	}
}

// watchMedia starts counting the RTP that arrives from the address a provisional's SDP names.
func (d *dial) watchMedia(r *sipgosip.Response) {
	if d.media != nil || len(r.Body()) == 0 {
		return
	}
	if addr, ok := sdpMediaAddr(r.Body()); ok {
		d.media, d.mediaStop = d.ua.media.Watch(addr)
	}
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (d *dial) stopTimers() {
	for _, t := range []*time.Timer{d.dialTimer, d.ringTimer, d.guardTimer, d.answerTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

func (d *dial) run(ctx context.Context, progress func(call.State, time.Time)) {
	d.dialTimer = time.NewTimer(d.call.DialTimeout)
	ctxDone := ctx.Done()
	for {
		var cancelResponses <-chan *sipgosip.Response
		if d.cancelTx != nil {
			cancelResponses = d.cancelTx.Responses()
		}
		select {
		case r := <-d.tx.Responses():
			if !d.ours(r) {
				// The transaction layer matches by Via branch and method only (RFC 3261 17.1.3); a response
				// naming another Call-ID or CSeq is a broken or hostile peer's, and does not move this call.
				d.ua.log.Warn("response for another call or request ignored", "call_id", d.res.CallID, "status", r.StatusCode)
				continue
			}
			if r.StatusCode < 100 {
				// Not a SIP status, though sipgo passes it on as a provisional: no ring, and no sign of life
				// that would allow a CANCEL or forbid failing over.
				d.ua.log.Warn("response without a SIP status ignored", "call_id", d.res.CallID, "status", r.StatusCode)
				continue
			}
			if d.onResponse(ctx, r, progress) {
				return
			}
		case err := <-d.icmp:
			if d.res.Responded {
				// The trunk answered this call; its timers end it if the trunk went away since.
				d.ua.log.Warn("icmp error after a response ignored", "call_id", d.res.CallID, "err", err)
				continue
			}
			// Nothing listens at the trunk's address (port unreachable), or no route to it: a transport
			// error, at once rather than after dial_timeout.
			d.ua.log.Warn("trunk unreachable", "call_id", d.res.CallID, "err", err)
			d.tx.Terminate()
			return
		case <-d.tx.Done():
			// Timer B or a transport error: the trunk is gone.
			d.ua.log.Warn("invite transaction ended", "call_id", d.res.CallID, "err", d.tx.Err())
			return
		case <-timerC(d.ringTimer):
			d.ringTimer = nil
			d.cancel(call.StopNone)
		case <-timerC(d.dialTimer):
			d.dialTimer = nil
			if d.facts.Rang || d.facts.Cancelled || d.voice() && d.facts.Provisional {
				continue // a voice call that had a provisional waits out its answer timer instead
			}
			if !d.facts.Provisional {
				// RFC 3261 9.1: no CANCEL before a provisional response; just stop.
				d.facts.Stopped = call.StopNoRing
				d.tx.Terminate()
				return
			}
			d.cancel(call.StopNoRing)
		case r := <-cancelResponses:
			if r.StatusCode == 200 {
				d.facts.CancelAnswered = true
			}
			if !r.IsProvisional() {
				// Ended at once, so that a response naming the CANCEL's CSeq after its 200 (a 487 from a
				// confused peer) reaches stray instead of being absorbed as a retransmission.
				d.cancelTx.Terminate()
				d.cancelTx = nil
			}
		case r := <-d.stray:
			// A 487 that names the CANCEL's CSeq instead of the INVITE's (a common scenario mistake) still
			// ends the cancelled INVITE: ACK it as the INVITE's and count the call missed.
			if r.StatusCode == 487 && d.facts.Cancelled && r.CSeq() != nil && r.CSeq().MethodName == sipgosip.CANCEL {
				d.ua.log.Warn("487 with the CANCEL's CSeq taken for the INVITE's", "call_id", d.res.CallID)
				d.ackFailure(r)
				d.tx.Terminate()
				d.onResponse(ctx, r, progress)
				return
			}
		case <-timerC(d.answerTimer):
			d.answerTimer = nil
			d.cancel(call.StopNoAnswer)
		case <-timerC(d.guardTimer):
			d.guardTimer = nil
			d.ua.log.Warn("no final response after CANCEL", "call_id", d.res.CallID, "cancel_answered", d.facts.CancelAnswered)
			d.tx.Terminate()
			return
		case <-ctxDone:
			ctxDone = nil
			switch {
			case d.facts.Cancelled:
			case d.voice() && d.facts.Provisional:
				d.cancel(call.StopInterrupted) // unlike a flash call's, a voice call's ring delivers nothing
			case d.facts.Rang:
				// The phone showed the call (ring_time had not run out): cancelled now, it is the missed
				// call a flash call is for, and recorded so.
				d.cancel(call.StopNone)
			case d.facts.Provisional:
				d.cancel(call.StopInterrupted)
			default:
				d.facts.Stopped = call.StopInterrupted
				d.tx.Terminate()
				return
			}
		}
	}
}

// voice reports whether the call is a voice call (call.KindVoice): it waits for the answer and plays.
func (d *dial) voice() bool { return d.call.Kind == call.KindVoice }

// ours reports whether r names this call's Call-ID and the INVITE's CSeq.
func (d *dial) ours(r *sipgosip.Response) bool {
	id, cseq := r.CallID(), r.CSeq()
	want := d.inv.CSeq()
	return id != nil && cseq != nil && id.Value() == d.inv.CallID().Value() &&
		cseq.SeqNo == want.SeqNo && cseq.MethodName == want.MethodName
}

// onResponse handles one response to the INVITE and reports whether the call is over.
func (d *dial) onResponse(ctx context.Context, r *sipgosip.Response, progress func(call.State, time.Time)) bool {
	code := r.StatusCode
	d.res.Responded = true
	switch {
	case r.IsProvisional():
		if d.voice() && !d.facts.Provisional {
			d.answerTimer = time.NewTimer(d.call.AnswerTimeout)
		}
		d.facts.Provisional = true
		if code != 180 && code != 183 {
			return false
		}
		d.watchMedia(r) // a 183 (or 180) with SDP: early media may follow
		if !d.facts.Rang {
			d.facts.Rang = true
			d.res.RingingAt = time.Now()
			if !d.facts.Cancelled && !d.voice() {
				if d.call.RingTime <= 0 {
					d.cancel(call.StopNone) // first: every millisecond more of ringing risks an answer
				} else {
					d.ringTimer = time.NewTimer(d.call.RingTime)
				}
			}
			progress(call.StateRinging, d.res.RingingAt)
		}
		return false
	case r.IsSuccess():
		d.facts.Final = code
		if d.voice() {
			d.res.AnsweredAt = time.Now()
			if d.ackDialog(r) {
				d.answer = r
			}
			return true
		}
		d.hangUp(r)
		return true
	case (code == 401 || code == 407) && d.mayAuthenticate(r):
		d.authTried = true
		inv, tx, err := authenticate(ctx, d.client, d.inv, r, &d.call)
		if err != nil {
			d.ua.log.Warn("digest auth not possible", "call_id", d.res.CallID, "err", err)
			d.facts.Final = code
			return true
		}
		d.inv, d.tx = inv, tx
		return false
	case code == 487 && d.facts.Cancelled:
		d.facts.Final = code // the CANCEL's: nothing the trunk said to report
	default:
		d.facts.Final = code
		d.res.Phrase = r.Reason
		if h := r.GetHeader("Reason"); h != nil {
			d.res.Phrase += "; " + h.Value()
		}
	}
	return true
}
