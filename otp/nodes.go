package otp

import (
	"context"
	"fmt"
	"time"
)

// Nodes is the store's record of the engines that share it (SPEC section 10). Each engine holds a lease it
// renews; an engine whose lease ran out (it crashed, or lost the database) is taken over by one other,
// which ends that engine's calls in flight as failed, interrupted, as the engine itself would have at its
// restart. A store one engine has alone has no Nodes.
type Nodes interface {
	// Renew extends node's lease to ttl from now, by the store's clock.
	Renew(ctx context.Context, node string, ttl time.Duration) error
	// Expired returns the nodes whose leases have run out.
	Expired(ctx context.Context) ([]string, error)
	// TakeOver removes dead's lease if it has run out and reports whether this call removed it: of engines
	// taking over together, one does.
	TakeOver(ctx context.Context, dead string) (bool, error)
	// Leave removes node's lease: it stopped cleanly, with no call in flight.
	Leave(ctx context.Context, node string) error
	// Leader returns the live node (its lease not run out) with the lowest ID: the one that sweeps
	// expiries and deletes old records.
	Leader(ctx context.Context) (string, error)
}

// DefaultLease is how long an engine's lease lasts unrenewed (node.lease): its calls in flight are ended by
// another engine within about this after it died. It is renewed every quarter of it.
const DefaultLease = 10 * time.Second

// node is the engine ID recorded with the calls it places: on a shared store only (on its own store, an
// engine ends every call in flight at its restart, whatever its ID was).
func (s *Service) node() string {
	if s.cfg.Nodes == nil {
		return ""
	}
	return s.cfg.Node
}

// owns reports whether this engine ends rec's calls in flight at its restart: all of them on a store of its
// own, on a shared store only those it placed (or placed by an engine before nodes).
func (s *Service) owns(rec *record) bool {
	return s.cfg.Nodes == nil || rec.Node == "" || rec.Node == s.cfg.Node
}

// tendLeases renews this engine's lease, then takes over the engines whose leases ran out: each one's calls
// in flight, in the records of the last changeWindow, are ended as interrupted.
//
// An engine takes over only once it has renewed its own lease without a break for a whole lease: after the
// store was out of reach (for every engine, a failover say), the others' leases ran out too, and they get
// that long to renew theirs before anyone counts them dead.
func (s *Service) tendLeases(ctx context.Context) error {
	// A renewal that hangs (the store stalled) must not outlive the lease it renews.
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Lease/4)
	err := s.cfg.Nodes.Renew(rctx, s.cfg.Node, s.cfg.Lease)
	cancel()
	if err != nil {
		s.renewing = time.Time{}
		return fmt.Errorf("renew the lease: %w", err)
	}
	now := s.now()
	if s.renewing.IsZero() || now.Sub(s.renewed) >= s.cfg.Lease {
		s.renewing = now // the first renewal, or the first after a gap as long as a lease: a break
	}
	s.renewed = now
	leader, err := s.cfg.Nodes.Leader(ctx)
	if err != nil {
		return err
	}
	s.leading.Store(leader == s.cfg.Node)
	if now.Sub(s.renewing) < s.cfg.Lease {
		return nil
	}
	dead, err := s.cfg.Nodes.Expired(ctx)
	if err != nil {
		return err
	}
	for _, node := range dead {
		if node == s.cfg.Node {
			continue // renewed above: its clock and the store's disagree, not a death
		}
		won, err := s.cfg.Nodes.TakeOver(ctx, node)
		if err != nil {
			return err
		}
		if !won {
			continue // another engine took it over
		}
		n, err := s.endCallsOf(ctx, node)
		if err != nil {
			return fmt.Errorf("end the calls of engine %s: %w", node, err)
		}
		s.log.Warn("engine's lease ran out: its calls in flight ended as interrupted", "node", node, "calls", n)
	}
	return nil
}

// sweeps reports whether this engine sweeps expiries and deletes old records: always on a store of its
// own, on a shared one while it leads (tendLeases), so that the engines do not all do the same work.
func (s *Service) sweeps() bool { return s.cfg.Nodes == nil || s.leading.Load() }

// endCallsOf ends the calls in flight that engine node placed in the last changeWindow.
func (s *Service) endCallsOf(ctx context.Context, node string) (int, error) {
	ids, err := s.inFlight(ctx, s.now().Add(-changeWindow), func(rec *record) bool { return rec.Node == node })
	if err != nil {
		return 0, err
	}
	return s.interrupt(ctx, ids, nil)
}
