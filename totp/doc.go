// Package totp is flashotp's authenticator codes: an app enrolls a user (a secret made here, shown once with
// its otpauth:// URI and a QR code of it, for Google Authenticator, FreeOTP, 1Password and the like), and
// later checks a code the user's authenticator shows. Codes are TOTP (RFC 6238: HMAC-SHA1 of the 30-second
// time step, 6 or 8 digits) or HOTP (RFC 4226: of a counter), computed by github.com/pquerna/otp.
//
// Invariants:
//   - One enrollment per (app, user); enrolling again is refused unless the request says replace.
//   - The secret is shown only in the answer to Enroll. The store keeps it sealed (package seal) under a key
//     derived from the server key, bound to its app and user: a copy of the database without the server key
//     gives no secret, and a sealed secret moved to another user's record does not open.
//   - No code is accepted twice. A TOTP enrollment keeps the last time step it accepted, and a code of that
//     step or an earlier one is refused as replayed; codes of one step before and after the current one are
//     accepted (clock drift), no further. An HOTP enrollment keeps the next counter it expects, accepts a
//     code of that counter or of the LookAhead counters after it, and moves past the counter it accepted
//     (resynchronising with an authenticator that was pressed without being used).
//   - The check of a code and the move of the step or counter are one store transaction: two concurrent
//     verifies of one code cannot both pass.
//   - Failed verifies (wrong or replayed codes) count against the app's failed_verifications rate limit,
//     keyed by app and "totp:" + user; a user whose limit is full is refused (429) before the code is
//     looked at.
//
// Caveat: deleting an app leaves its enrollments in the store; enrolling a user of a new app with the same ID
// needs replace.
package totp
