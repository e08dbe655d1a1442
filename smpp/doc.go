// Package smpp submits SMS to SMSCs over SMPP 3.4 (sms.via: smpp, SPEC section 8): one bound transceiver
// session per configured SMSC, kept alive with enquire_link and rebound with exponential backoff when it
// drops; submit_sm with the source address's TON/NPI taken from the sender's form, GSM 7-bit (data_coding
// 0, unpacked septets) or UCS-2 (data_coding 8), long texts cut into parts joined by a concatenation user
// data header (esm_class 0x40, an 8-bit reference) where sms.Split cuts them; registered_delivery 1, and
// the deliver_sm delivery receipts that come back turned into message.Receipts for the message's Ref.
//
// The client is this package's own: no Go SMPP library is served by the module proxy the project builds
// from (linxGnu/gosmpp, fiorix/go-smpp, ajankovic/smpp and others were refused), and the protocol's part
// an ESME needs is small. It implements bind_transceiver, enquire_link both ways, submit_sm, deliver_sm
// (always answered), generic_nack and unbind; not outbind, data_sm, query_sm, replace_sm or cancel_sm.
//
// Each SMSC has a window (submit_sm PDUs awaiting their response) and a rate (submits a second). A Sender
// sends on the first SMSC in the configured order that is bound, waiting within the caller's context for
// one to bind. A submit_sm whose response never came because the connection dropped is submitted again
// once a session is bound: a user may get an SMS twice, never none.
//
// Receipts are matched to messages through an in-memory map from each part's SMSC message_id to the
// message's Ref, bounded in size and age (receipts of a restarted engine are not matched). A message is
// delivered when every part is; it failed when any part did.
//
// The message's text (it holds the code) and the SMSC's password are never logged.
package smpp
