package numberpool

import (
	"context"
	"encoding/json"
)

// Store keeps a Registry's state: its pools, its quarantines and each recipient's recent calls (the
// cooldown's history). The Registry encodes every record; to a Store a record is opaque bytes under a name.
// flashotp/store implements it on bbolt.
//
// The Registry's methods that read or write it take the caller's ctx; the writes that must happen whatever
// became of the request (histories, quarantines after a rejection) go under context.WithoutCancel.
type Store interface {
	// LoadPools calls fn with every stored pool, in name order, from one consistent read; fn must not
	// call the Store.
	LoadPools(ctx context.Context, fn func(name string, pool []byte) error) error
	// PutPool stores pool under name, replacing what was there.
	PutPool(ctx context.Context, name string, pool []byte) error
	// DeletePool removes the pool called name; removing a missing pool is not an error.
	DeletePool(ctx context.Context, name string) error

	// LoadQuarantines calls fn with every stored quarantine by its key (the Registry's name for the CLI or
	// entry quarantined), in key order, from one consistent read; fn must not call the Store.
	LoadQuarantines(ctx context.Context, fn func(key string, q []byte) error) error
	// PutQuarantine stores q under key, replacing what was there.
	PutQuarantine(ctx context.Context, key string, q []byte) error
	// DeleteQuarantine removes the quarantine under key; removing a missing one is not an error.
	DeleteQuarantine(ctx context.Context, key string) error

	// RecentCalls returns recipient's stored history, or nil and no error when none is stored.
	RecentCalls(ctx context.Context, recipient string) ([]byte, error)
	// PutRecentCalls stores the history of each recipient, replacing what was there, in one write.
	PutRecentCalls(ctx context.Context, histories map[string][]byte) error
	// SwapRecentCalls stores next as recipient's history only if the stored one is still old (nil: none
	// is stored), and reports whether it did. Engines sharing the store pick through it (Config.Shared).
	SwapRecentCalls(ctx context.Context, recipient string, old, next []byte) (bool, error)

	// PutUses stores node's use counts (engines sharing the store: Config.Shared), replacing what was there.
	PutUses(ctx context.Context, node string, uses []byte) error
	// LoadUses calls fn with every node's stored use counts; fn must not call the Store.
	LoadUses(ctx context.Context, fn func(node string, uses []byte) error) error
}

func (r *Registry) save(ctx context.Context, p Pool) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.store.PutPool(ctx, p.Name, data)
}
