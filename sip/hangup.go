package sip

import (
	"context"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"

	"flashotp/call"
)

// watchLateAnswer remembers a call that ended for 64·T1 (sipgo's, read now), so that a 200 OK still on its
// way (from a slow trunk, or one that crossed the CANCEL) is ACKed and BYEd at once rather than left to
// run, a retransmitted final response is ACKed again, and the callee's BYE crossing the UA's is answered
// 200, not 481.
func (u *UA) watchLateAnswer(d *dial) {
	u.ended.Store(d.res.CallID, d)
	time.AfterFunc(64*sipgosip.T1, func() { u.ended.CompareAndDelete(d.res.CallID, d) })
}

// stray takes a response that matched no transaction (a retransmission, or a peer that got CSeq or Via
// wrong) to the call it names, if that call is still running. For a call that ended unanswered, a 2xx is
// hung up and a final response ACKed; anything else is dropped.
func (u *UA) stray(r *sipgosip.Response) {
	id := r.CallID()
	if id == nil {
		return
	}
	d, ended := u.ended.Load(id.Value())
	if ch, ok := u.calls.Load(id.Value()); ok && !ended {
		select {
		case ch.(chan *sipgosip.Response) <- r:
		default:
		}
		return
	}
	if !ended || r.CSeq() == nil || r.CSeq().MethodName != sipgosip.INVITE {
		return
	}
	switch {
	case r.IsSuccess():
		if d.(*dial).hangUp(r) {
			u.log.Warn("late answer to a call already ended: hung up", "call_id", id.Value())
		}
	case r.StatusCode >= 300:
		d.(*dial).ackLateFinal(r)
	}
}

// cancel sends CANCEL for the INVITE and arms the guard that ends the call if no final answer follows.
func (d *dial) cancel(why call.Stop) {
	if d.facts.Cancelled {
		return
	}
	d.facts.Cancelled = true
	d.facts.Stopped = why
	d.guardTimer = time.NewTimer(d.call.CancelGuard)
	ctx, stop := context.WithTimeout(d.cleanup, cleanupTimeout) // bounds only the sending: the guard bounds the wait
	tx, err := d.client.TransactionRequest(ctx, newCancel(d.inv))
	stop()
	if err != nil {
		d.ua.log.Warn("cancel not sent", "call_id", d.res.CallID, "err", err)
		return
	}
	if why == call.StopNone {
		d.res.CancelledAt = time.Now() // written to the socket
	}
	d.cancelTx = tx
}

// ackFailure ACKs a non-2xx final response outside the INVITE transaction (RFC 3261 17.1.1.3: same branch
// as the INVITE, the response's To).
func (d *dial) ackFailure(r *sipgosip.Response) {
	ack := newInDialog(sipgosip.ACK, d.inv, r)
	ack.Recipient = *d.inv.Recipient.Clone()
	ack.RemoveHeader("Route")
	sipgosip.CopyHeaders("Route", d.inv, ack)
	ack.PrependHeader(sipgosip.HeaderClone(d.inv.Via()))
	ack.SetDestination(d.inv.Destination())
	if err := d.client.WriteRequest(ack); err != nil {
		d.ua.log.Warn("ack not sent", "call_id", d.res.CallID, "err", err)
	}
}

// ackLateFinal ACKs a final response that came after the call ended (again, as its ACK was lost, or from
// another fork), at most once per T1: a peer that answers every ACK with it again loops no faster than its
// own retransmissions would (sipgo's transaction waits T2 for the same reason).
func (d *dial) ackLateFinal(r *sipgosip.Response) {
	d.lateMu.Lock()
	due := time.Since(d.finalAcked) >= sipgosip.T1
	if due {
		d.finalAcked = time.Now()
	}
	d.lateMu.Unlock()
	if due {
		d.ackFailure(r)
	}
}

// maxDialogs is how many dialogs (2xx To tags) of one call are ACKed and BYEd. A real fork rarely answers
// more than twice; a trunk that sends thousands of 2xx with new tags (broken, or a stranger's on its path)
// would otherwise make as many ACKs, BYEs and goroutines. The 2xx past it are dropped and counted; the
// trunk, its 2xx never ACKed, ends those dialogs itself after 64*T1 (RFC 3261 13.3.1.4).
const maxDialogs = 4

// hangUp ACKs a 2xx and sends BYE in the background, so the call's outcome is known at once. Each dialog
// is hung up once: a retransmitted 2xx gets its ACK again, and a 2xx from another fork (another To tag) is a
// dialog of its own, ACKed and BYEd too (RFC 3261 13.2.2.4), never left answered, up to maxDialogs. It
// reports whether ok opened a dialog (and so got a BYE).
func (d *dial) hangUp(ok *sipgosip.Response) bool {
	if !d.ackDialog(ok) {
		return false
	}
	bye := d.newBye(ok)
	if !d.ua.track() {
		return true // closing: no new work
	}
	go func() {
		defer d.ua.wg.Done()
		d.bye(bye)
	}()
	return true
}

// ackDialog ACKs a 2xx, and reports whether it opened a new dialog (not a retransmission, and within
// maxDialogs), which the caller must end with a BYE.
func (d *dial) ackDialog(ok *sipgosip.Response) bool {
	tag := ""
	if to := ok.To(); to != nil {
		tag, _ = to.Params.Get("tag")
	}
	d.lateMu.Lock()
	first := d.dialogs == nil
	ack, seen := d.dialogs[tag]
	if !seen && len(d.dialogs) >= maxDialogs {
		d.lateMu.Unlock()
		d.ua.peers.dropped(DropDialogs)
		return false
	}
	if seen {
		ack = ack.Clone()
	} else {
		ack = newInDialog(sipgosip.ACK, d.inv, ok)
		ack.SetDestination(d.inv.Destination())
	}
	err := d.client.WriteRequest(ack) // under the lock: the first write gives the ACK the Via its copies keep
	if !seen {
		if first {
			d.dialogs = map[string]*sipgosip.Request{}
		}
		d.dialogs[tag] = ack
	}
	n := len(d.dialogs)
	d.lateMu.Unlock()
	if err != nil {
		d.ua.log.Warn("ack not sent", "call_id", d.res.CallID, "err", err)
	}
	if seen {
		return false
	}
	if first {
		// The transaction passes 2xx retransmissions, and other forks' 2xx, only to this hook.
		d.tx.OnRetransmission(func(r *sipgosip.Response) {
			if r.IsSuccess() {
				d.hangUp(r)
			}
		})
	} else {
		d.ua.log.Warn("2xx from another fork: hanging it up too", "call_id", d.res.CallID, "dialogs", n)
	}
	return true
}

// newBye builds the BYE that ends the dialog ok opened.
func (d *dial) newBye(ok *sipgosip.Response) *sipgosip.Request {
	bye := newInDialog(sipgosip.BYE, d.inv, ok)
	bye.CSeq().SeqNo++
	bye.SetDestination(d.inv.Destination())
	return bye
}

// bye sends bye and waits, at most cleanupTimeout, for its answer.
func (d *dial) bye(bye *sipgosip.Request) {
	ctx, cancel := context.WithTimeout(d.cleanup, cleanupTimeout)
	defer cancel()
	res, err := do(ctx, d.client, bye)
	if err != nil || res.StatusCode >= 300 {
		d.ua.log.Warn("bye failed", "call_id", d.res.CallID, "err", err)
	}
}
