package otp

import "time"

// staged is the Tx a change's write function runs against outside the store's writer: it keeps the writes,
// encoded, for the transaction to apply (modify). The store has one writer, shared by every send, outcome and
// verify; what it runs is only the puts, not the encoding of the events, attempts and webhooks beside them.
// A write function only writes, with the methods staged has (events go through Service.event); the others
// (the embedded nil Tx) are not to be called.
type staged struct {
	Tx
	writes []func(Tx) error
}

func (s *staged) add(w func(Tx) error) error { s.writes = append(s.writes, w); return nil }

// apply makes the staged writes in tx.
func (s *staged) apply(tx Tx) error {
	for _, w := range s.writes {
		if err := w(tx); err != nil {
			return err
		}
	}
	return nil
}

func (s *staged) PutExpiry(id string, at time.Time) error {
	return s.add(func(tx Tx) error { return tx.PutExpiry(id, at) })
}

func (s *staged) DeleteExpiry(id string, at time.Time) error {
	return s.add(func(tx Tx) error { return tx.DeleteExpiry(id, at) })
}

func (s *staged) PutAttempt(vid, id string, a []byte) error {
	return s.add(func(tx Tx) error { return tx.PutAttempt(vid, id, a) })
}

func (s *staged) PutDelivery(id string, d []byte) error {
	return s.add(func(tx Tx) error { return tx.PutDelivery(id, d) })
}
