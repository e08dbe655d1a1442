// Package apptest opens real app registries for tests: apps on the test's store, their rate limits off
// unless a test sets them.
package apptest

import (
	"testing"

	"flashotp/apps"
	"flashotp/numberpool"
	"flashotp/store"
)

// NoLimits switches every rate limit off.
var NoLimits = map[string]apps.Limit{
	apps.ScopeRecipient: {}, apps.ScopeApp: {}, apps.ScopeClient: {}, apps.ScopePrefix: {}, apps.ScopeFailedVerifications: {},
}

// App is app id drawing from the pool named like it, with key and secret, and no rate limits.
func App(id, key, secret string) apps.ConfigApp {
	return apps.ConfigApp{App: apps.App{ID: id, Pools: []string{id}, RateLimits: NoLimits}, APIKey: key, APISecret: secret}
}

// AnyPools are number pools that take every app.
type AnyPools struct{}

// SetApp takes any app.
func (AnyPools) SetApp(string, []string, int) error { return nil }

// Pool says every pool exists.
func (AnyPools) Pool(name string) (numberpool.Pool, bool) { return numberpool.Pool{Name: name}, true }

// Open returns a registry over db holding list, with defaults d; pools (nil: AnyPools) vet each app.
func Open(t testing.TB, db *store.DB, d apps.Defaults, pools apps.Pools, list ...apps.ConfigApp) *apps.Registry {
	t.Helper()
	if pools == nil {
		pools = AnyPools{}
	}
	r, err := apps.Open(t.Context(), db, db.Key(), d, list, pools, nil)
	if err != nil {
		t.Fatalf("apps.Open: %v", err)
	}
	return r
}
