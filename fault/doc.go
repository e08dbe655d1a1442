// Package fault is the engine's one error vocabulary: an *Error carries one of the API's error codes
// (SPEC section 4) with the message the caller reads, and what the answer needs beside them (Retry-After,
// attempts_remaining, the rate limit's scope).
//
// The domain packages (otp, apps, numberpool) and the store return an *Error wherever the caller is to be
// told something; httpapi turns it into the answer with one table from Code to HTTP status. Any other error
// is internal: the caller is told "internal", the detail goes to the log.
//
// An error's Message is shown to API callers as it is: it never holds a code, a secret or a whole CLI.
// An Error with Err set hides a failure behind its Message (a failing disk): Err is logged, never shown.
//
// fault imports nothing of the engine's.
package fault
