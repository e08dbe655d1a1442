// Package otp is the verification lifecycle: send (draw a CLI, store the code's MAC, queue the flash call),
// the call's progress and outcome coming back from the dialer, verify (constant time, attempts, expiry,
// single use) and status.
//
// Invariants:
//   - A code is never stored or returned: only HMAC-SHA256(server key, verification_id ‖ code) is kept, and
//     only cli_prefix (the CLI without its code digits) is shown.
//   - A send that returns an error leaves no verification in the store (its drawn CLI still counts in the
//     recipient's cooldown); a send that returns a verification has it durably stored and its call
//     accepted by the dialer, whose one outcome will be recorded.
//   - A call that rang keeps its verification pending even if the call then failed (the CLI is in the call
//     log); a call that failed before ringing fails the verification (verify answers undeliverable).
package otp
