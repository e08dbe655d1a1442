package fakes

import (
	"sync"
	"testing"

	"flashotp/dialer"
	"flashotp/otp"
)

// Dialer is the dialer otp.Service hands its calls to: it records each call it is given and places none.
// Refuse makes it refuse calls (as a full queue does), SetDown makes Available say why a call would be
// refused. Its zero value accepts every call.
type Dialer struct {
	mu      sync.Mutex
	err     error // what Submit returns
	down    error // what Available returns
	got     []dialer.Request
	refused []dialer.Request
}

var _ otp.Dialer = (*Dialer)(nil)

// Available returns the error SetDown set (nil: every trunk is up).
func (d *Dialer) Available([]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down
}

// Submit records r, accepted, or refused with the error Refuse set.
func (d *Dialer) Submit(r dialer.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		d.refused = append(d.refused, r)
		return d.err
	}
	d.got = append(d.got, r)
	return nil
}

// Refuse makes Submit refuse every call with err from now on (nil: accept again).
func (d *Dialer) Refuse(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// SetDown makes Available return err from now on (nil: up again).
func (d *Dialer) SetDown(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = err
}

// Requests returns the calls accepted so far, oldest first.
func (d *Dialer) Requests() []dialer.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialer.Request(nil), d.got...)
}

// Refused returns the calls refused so far, oldest first.
func (d *Dialer) Refused() []dialer.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialer.Request(nil), d.refused...)
}

// Offered returns how many calls were submitted, accepted or not.
func (d *Dialer) Offered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got) + len(d.refused)
}

// Last returns the last call accepted; it fails t if there is none.
func (d *Dialer) Last(t testing.TB) dialer.Request {
	t.Helper()
	rs := d.Requests()
	if len(rs) == 0 {
		t.Fatal("the dialer got no call")
	}
	return rs[len(rs)-1]
}
