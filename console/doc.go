// Package console holds what the web console keeps apart from the engine's data (SPEC section 9): the
// operators' accounts with their roles, the sessions of those signed in, and the audit log of what they
// changed. The HTTP side (sign-in, cookies, CSRF, the pages' routes) is httpapi's; the store keeps accounts
// and the audit log (Store).
package console
