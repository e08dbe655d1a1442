package sip

import (
	sipgosip "github.com/emiago/sipgo/sip"
)

// onInvite declines an INVITE (the UA places calls, it takes none) once, statelessly: a server transaction
// would send its 603 again eleven times over 32 s until an ACK came, to whatever address the request
// named. A retransmitted INVITE gets one 603 more, as it would from the transaction.
func (u *UA) onInvite(req *sipgosip.Request, _ sipgosip.ServerTransaction) {
	// Returning without a response through tx ends the transaction (sipgo's TerminateGracefully), and its
	// timers with it: no 100 Trying either.
	if err := u.srv.WriteResponse(sipgosip.NewResponseFromRequest(req, 603, "Decline", nil)); err != nil {
		u.log.Debug("603 to an incoming INVITE not sent", "err", err)
	}
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo answers those itself): there is
// nothing to cancel (RFC 3261 9.2).
func (u *UA) onCancel(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

// onBye answers a BYE: 200 for a call of the UA's (the callee hanging up as the UA does, their BYEs
// crossing), else 481: no such dialog (RFC 3261 15.1.2).
func (u *UA) onBye(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
	code, reason := 481, "Call/Transaction Does Not Exist"
	if id := req.CallID(); id != nil {
		_, running := u.calls.Load(id.Value())
		_, ended := u.ended.Load(id.Value())
		if running || ended {
			code, reason = 200, "OK"
		}
		if ch, ok := u.byes.Load(id.Value()); ok {
			select { // a voice call playing its prompt: the callee hung up
			case ch.(chan struct{}) <- struct{}{}:
			default:
			}
		}
	}
	_ = tx.Respond(sipgosip.NewResponseFromRequest(req, code, reason, nil))
}
