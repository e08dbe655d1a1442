// Package sip is flashotp's SIP user agent, on github.com/emiago/sipgo. It places flash calls: an INVITE from
// the listening socket with the CLI in the headers the trunk wants (From and P-Asserted-Identity by default)
// and an SDP offer for a media socket the
// UA really holds, a CANCEL once the phone rings, ACK and BYE for a 200 that wins the race, and exactly one
// call.Result per call. The UA only records what happened on the wire (call.Facts); call.Outcome names the
// call's state and reason.
//
// Transports: UDP listens on Config.Listen, and TCP on the same address when Config.TCP says so, within
// Config.TCPLimits; TLS is client-only (requests go out, nothing listens). sipgo's own log lines go
// through BoundedLogger. Only the peers (Config.Peers, Config.AcceptFrom) are heard, on every transport: a
// stranger's bytes are dropped before sipgo parses them, so no one else can answer a call's INVITE.
// sipgo's timers are package globals (sipgo's sip.SetTimers); only cmd may set them, never this package.
package sip
