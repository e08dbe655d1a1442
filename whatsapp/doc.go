// Package whatsapp delivers codes over WhatsApp: the WhatsApp Business Cloud API's template message of
// category AUTHENTICATION (a one-time password template: the code is the body's parameter and the copy-code
// button's), and the status webhooks Meta posts back (sent, delivered, read, failed).
//
// A Sender sends one request per message (POST {base_url}/{api_version}/{phone_number_id}/messages with the
// access token as a bearer token) and answers with the message's wamid. It carries the message's Ref in
// biz_opaque_callback_data, and also keeps a bounded in-memory map from wamid to Ref, so that a status names
// its step either way. The status webhook's body is checked against its X-Hub-Signature-256 (HMAC-SHA256 of
// the raw body under the app secret) before anything in it is read.
//
// Invariants: the code and the access token are never logged, and are scrubbed from any detail the API
// answers with before it reaches a Result or a Receipt. A Sender holds no goroutine: Close only drops its
// idle connections.
package whatsapp
