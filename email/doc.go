// Package email delivers the email channel (SPEC section 8): a verification's code in a transactional email
// (a text and an HTML part, multipart/alternative) sent over SMTP with STARTTLS or implicit TLS and AUTH,
// through github.com/wneessen/go-mail.
//
// Every header comes from a checked address (the config's from, the step's recipient) or from the engine
// (Message-ID, Date, Auto-Submitted); the subject is made one line before it is set, so no value can start
// a header of its own. There is no List-Unsubscribe: the email answers the user's own request.
//
// A Sender opens a connection per message: see Sender for why. A permanent failure (a 5xx) fails the
// message at once (535: auth_failed; others: rejected); a temporary one (a 4xx, a network error) is retried
// with backoff until the Send's context ends, then the message fails unavailable. SMTP has no delivery
// receipt a Sender could take: a bounce arrives later as an email of its own, to the from address.
//
// The package imports message, setting and templates of the engine's, never otp.
package email
