package apps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"flashotp/fault"
	"flashotp/numberpool"
	"flashotp/seal"
)

// Errors returned by Registry. Those the admin API answers come in a *fault.Error that carries the code: an
// unknown app or key is fault.NotFound, an app ID taken fault.Conflict, settings that do not hold
// fault.InvalidRequest.
var (
	// ErrFromConfig is returned (as fault.Conflict) when the admin API would change what the config file
	// owns.
	ErrFromConfig = errors.New("owned by the config file")
	// ErrUnauthorized is returned for a missing, unknown, revoked or wrong credential, always as an
	// *AuthError whose Reason, one of the errors below, says why.
	ErrUnauthorized = errors.New("unauthorized")

	// ErrNoCredentials: no key, no secret, or no token was given.
	ErrNoCredentials = errors.New("no credentials")
	// ErrMalformed: the credentials could not be read (a bad Authorization header, a JWT that does not
	// parse).
	ErrMalformed = errors.New("malformed credentials")
	// ErrUnknownKey: no such API key (a JWT's iss names none).
	ErrUnknownKey = errors.New("unknown key")
	// ErrRevokedKey: the key was revoked.
	ErrRevokedKey = errors.New("revoked key")
	// ErrWrongSecret: the key exists, the secret is not its secret.
	ErrWrongSecret = errors.New("wrong secret")
	// ErrTokenExpired: the JWT's exp is past (with the leeway).
	ErrTokenExpired = errors.New("token expired")
	// ErrMissingClaim: the JWT lacks a claim it needs (exp, iat, iss); AuthError.Claim names it.
	ErrMissingClaim = errors.New("missing claim")
	// ErrInvalidClaim: a JWT claim has a value refused (exp more than MaxTokenAhead ahead, iat or nbf in the
	// future); AuthError.Claim names it.
	ErrInvalidClaim = errors.New("invalid claim")
	// ErrBadSignature: the JWT is not signed HS256 with its key's secret.
	ErrBadSignature = errors.New("bad signature")
	// ErrRevoked is returned (as fault.Conflict) when rotating a revoked key: revocation is final.
	ErrRevoked = errors.New("revoked")
)

// Store keeps the apps and their API keys. The Registry encodes every record; to a Store a record is
// opaque bytes under its ID (an app's ID, an API key). flashotp/store implements it on bbolt.
//
// The Registry's methods that write it take the caller's ctx; a write goes under context.WithoutCancel, since
// the registry's maps already hold its changes when it is made.
type Store interface {
	// LoadApps calls app with every stored app and key with every stored key, by ID, from one consistent
	// read; app and key must not call the Store.
	LoadApps(ctx context.Context, app, key func(id string, record []byte) error) error
	// SaveApps writes apps and keys together, all or nothing: each record under its ID, a nil record
	// removing its ID (removing a missing one is not an error).
	SaveApps(ctx context.Context, apps, keys map[string][]byte) error
}

// storedApp is an app as the store keeps it.
type storedApp struct {
	App
	SealedWebhookSecret []byte `json:"sealed_webhook_secret"`
	full                App    // App with defaults filled: what Get returns, made once per change
}

// ConfigApp is an app of the config file (apps[]): its settings and its one key.
type ConfigApp struct {
	App           `mapstructure:",squash"`
	APIKey        string `mapstructure:"api_key"`
	APISecret     string `mapstructure:"api_secret"`
	WebhookSecret string `mapstructure:"webhook_secret"` // signs webhooks; empty: one is generated when the app has a webhook_url
}

// Registry holds the apps and keys, cached in memory, written through to the store.
type Registry struct {
	store    Store
	defaults Defaults
	box      *seal.Box
	macKey   []byte
	now      func() time.Time
	pools    Pools

	mu   sync.RWMutex
	apps map[string]*storedApp
	keys map[string]*storedKey
}

// Pools are the number pools the apps draw their caller IDs from; *numberpool.Registry is one. SetApp is
// told of each app about to be stored and may refuse it (a pool it names is missing, its code space is too
// small); pools nil: the app is gone.
type Pools interface {
	SetApp(id string, pools []string, codeLength int) error
	// Pool returns the pool called name, if there is one (an app's inbound_pool must be one).
	Pool(name string) (numberpool.Pool, bool)
}

// Open loads the stored apps and keys, puts the config file's apps over them (dropping config apps no
// longer in the file), and returns the registry. Secrets are sealed and MACed under keys derived from the
// server key key. pools vets every app stored from now on.
func Open(ctx context.Context, s Store, key []byte, d Defaults, configApps []ConfigApp, pools Pools, now func() time.Time) (*Registry, error) {
	if now == nil {
		now = time.Now
	}
	box, err := seal.New(key, "flashotp apps seal v1")
	if err != nil {
		return nil, err
	}
	r := &Registry{store: s, defaults: d, box: box, macKey: seal.Derive(key, "flashotp api secret v1"), now: now, pools: pools}
	if r.apps, r.keys, err = r.load(ctx); err != nil {
		return nil, err
	}
	if err := r.loadConfig(ctx, configApps); err != nil {
		return nil, err
	}
	// Every app must still pass (pools may have changed since it was stored).
	for _, id := range slices.Sorted(maps.Keys(r.apps)) {
		a := r.apps[id].full
		if err := r.pools.SetApp(id, a.Pools, a.CodeLength); err != nil {
			return nil, fmt.Errorf("app %q: %w", id, err)
		}
	}
	return r, nil
}

// load reads every stored app and key.
func (r *Registry) load(ctx context.Context) (map[string]*storedApp, map[string]*storedKey, error) {
	apps, keys := map[string]*storedApp{}, map[string]*storedKey{}
	err := r.store.LoadApps(ctx, func(id string, v []byte) error {
		var a storedApp
		err := json.Unmarshal(v, &a)
		a.full = a.App.WithDefaults(r.defaults)
		apps[id] = &a
		return err
	}, func(id string, v []byte) error {
		var k storedKey
		err := json.Unmarshal(v, &k)
		keys[id] = &k
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load apps: %w", err)
	}
	return apps, keys, nil
}

// Reload reads the apps and keys again from the store, as another engine sharing it left them: an app or
// key made, changed, rotated or revoked there is live here once Reload returns. The pools are told of each
// app (reload them first: an app may name a pool just made); an app they refuse is kept as the other engine
// stored it, and the refusal returned as ErrPoolsRefused.
//
// It reads under the registry's lock, as every change here writes under it: a change made here is never
// overwritten by an older read.
func (r *Registry) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	apps, keys, err := r.load(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for id := range r.apps {
		if apps[id] == nil {
			errs = append(errs, r.pools.SetApp(id, nil, 0))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(apps)) {
		if err := r.pools.SetApp(id, apps[id].full.Pools, apps[id].full.CodeLength); err != nil {
			errs = append(errs, fmt.Errorf("%w: app %q: %w", ErrPoolsRefused, id, err))
		}
	}
	r.apps, r.keys = apps, keys
	return errors.Join(errs...)
}

// ErrPoolsRefused wraps what the pools said of an app Reload read: the app is live all the same (another
// engine stored it), and reading it again would change nothing.
var ErrPoolsRefused = errors.New("the pools refuse an app another engine stored")

func (r *Registry) loadConfig(ctx context.Context, configApps []ConfigApp) error {
	now := r.now().UTC()
	inConfig := map[string]bool{}
	configKeys := map[string]bool{}
	return r.write(ctx, func(ch *changes) error {
		for _, ca := range configApps {
			inConfig[ca.ID] = true
			configKeys[ca.APIKey] = true
			a := &storedApp{App: ca.App}
			a.FromConfig, a.CreatedAt, a.UpdatedAt = true, now, now
			if old := r.apps[ca.ID]; old != nil {
				a.CreatedAt, a.SealedWebhookSecret = old.CreatedAt, old.SealedWebhookSecret
			}
			if ca.WebhookSecret != "" {
				a.SealedWebhookSecret = r.seal(ca.WebhookSecret)
			} else if a.SealedWebhookSecret == nil {
				a.SealedWebhookSecret = r.seal(newSecret())
			}
			if err := r.putApp(ch, a); err != nil {
				return err
			}
			k := r.newKey(ca.ID, ca.APIKey, ca.APISecret, now)
			k.FromConfig = true
			if old := r.keys[ca.APIKey]; old != nil && old.AppID != ca.ID && !old.FromConfig {
				return fmt.Errorf("apps: api_key %q of config app %q is already a key of app %q", ca.APIKey, ca.ID, old.AppID)
			}
			if err := r.putKey(ch, k); err != nil {
				return err
			}
		}
		for id, a := range r.apps {
			if a.FromConfig && !inConfig[id] {
				r.deleteApp(ch, id)
			}
		}
		for id, k := range r.keys {
			if k.FromConfig && !configKeys[id] {
				ch.keys[id] = nil
				delete(r.keys, id)
			}
		}
		return nil
	})
}

// changes are the records of one write, stored together: a nil record removes its ID.
type changes struct{ apps, keys map[string][]byte }

// write has fn make changes (and apply them to the registry's maps), then stores them.
func (r *Registry) write(ctx context.Context, fn func(ch *changes) error) error {
	ch := &changes{apps: map[string][]byte{}, keys: map[string][]byte{}}
	if err := fn(ch); err != nil {
		return err
	}
	// The maps hold the changes already: the store must get them whoever waits, or the two would differ.
	return r.store.SaveApps(context.WithoutCancel(ctx), ch.apps, ch.keys)
}

func (r *Registry) putApp(ch *changes, a *storedApp) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ch.apps[a.ID] = v
	a.full = a.App.WithDefaults(r.defaults)
	r.apps[a.ID] = a
	return nil
}

func (r *Registry) deleteApp(ch *changes, id string) {
	ch.apps[id] = nil
	for kid, k := range r.keys {
		if k.AppID == id {
			ch.keys[kid] = nil
			delete(r.keys, kid)
		}
	}
	delete(r.apps, id)
}

// Get returns app id with defaults filled. Its slices and maps are shared: read them, do not change them.
func (r *Registry) Get(id string) (App, bool) {
	r.mu.RLock()
	a, ok := r.apps[id]
	r.mu.RUnlock()
	if !ok {
		return App{}, false
	}
	return a.full, true
}

// WebhookSecret returns the secret app id's webhooks are signed with.
func (r *Registry) WebhookSecret(id string) ([]byte, error) {
	r.mu.RLock()
	a, ok := r.apps[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fault.Errorf(fault.NotFound, "not found")
	}
	return r.unseal(a.SealedWebhookSecret)
}

// Count returns how many apps there are.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.apps)
}

// List returns every app, defaults filled, by ID.
func (r *Registry) List() []App {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]App, 0, len(r.apps))
	for _, id := range slices.Sorted(maps.Keys(r.apps)) {
		out = append(out, r.apps[id].full)
	}
	return out
}

// Created is what creating an app returns: the app, its first key with its secret, and the webhook secret.
// The secrets are shown here only.
type Created struct {
	App           App    `json:"app"`
	Key           Key    `json:"key"`
	WebhookSecret string `json:"webhook_secret"`
}

// Create stores a new app with one key.
func (r *Registry) Create(ctx context.Context, a App) (Created, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.apps[a.ID]; ok {
		return Created{}, fault.Errorf(fault.Conflict, "app %q: already exists", a.ID)
	}
	now := r.now().UTC()
	a.FromConfig, a.CreatedAt, a.UpdatedAt = false, now, now
	if err := r.vet(a); err != nil {
		return Created{}, err
	}
	webhookSecret, secret := newSecret(), newSecret()
	k := r.newKey(a.ID, newKeyID(), secret, now)
	err := r.write(ctx, func(ch *changes) error {
		if err := r.putApp(ch, &storedApp{App: a, SealedWebhookSecret: r.seal(webhookSecret)}); err != nil {
			return err
		}
		return r.putKey(ch, k)
	})
	if err != nil {
		return Created{}, err
	}
	key := k.Key
	key.Secret = secret
	return Created{App: a.WithDefaults(r.defaults), Key: key, WebhookSecret: webhookSecret}, nil
}

// vet checks a (defaults filled) and lets the pools vet it.
func (r *Registry) vet(a App) error {
	full := a.WithDefaults(r.defaults)
	if err := full.Validate(); err != nil {
		return fault.Errorf(fault.InvalidRequest, "%w", err)
	}
	if full.InboundPool != "" {
		if _, ok := r.pools.Pool(full.InboundPool); !ok {
			return fault.Errorf(fault.InvalidRequest, "inbound_pool: no pool %q", full.InboundPool)
		}
	}
	return r.pools.SetApp(a.ID, full.Pools, full.CodeLength)
}

// Update applies fn to app id's stored settings (defaults not filled: what fn leaves unset keeps following
// the engine's defaults) and stores the result. An error of fn is returned as it is.
func (r *Registry) Update(ctx context.Context, id string, fn func(a *App) error) (App, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.apps[id]
	if !ok {
		return App{}, fault.Errorf(fault.NotFound, "app %q: not found", id)
	}
	if cur.FromConfig {
		return App{}, fault.Errorf(fault.Conflict, "app %q: %w; change it there", id, ErrFromConfig)
	}
	next := *cur
	if cur.PreSendHook != nil {
		h := *cur.PreSendHook
		next.PreSendHook = &h
	}
	next.Pools, next.AllowedCountries = slices.Clone(cur.Pools), slices.Clone(cur.AllowedCountries)
	next.BlockedNumberTypes, next.RateLimits = slices.Clone(cur.BlockedNumberTypes), maps.Clone(cur.RateLimits)
	next.Channels, next.Workflow, next.CodeLengths = slices.Clone(cur.Channels), slices.Clone(cur.Workflow), maps.Clone(cur.CodeLengths)
	next.Templates = cloneTemplates(cur.Templates)
	if err := fn(&next.App); err != nil {
		return App{}, err
	}
	next.ID, next.FromConfig, next.CreatedAt, next.UpdatedAt = id, false, cur.CreatedAt, r.now().UTC()
	if err := r.vet(next.App); err != nil {
		return App{}, err
	}
	if err := r.write(ctx, func(ch *changes) error { return r.putApp(ch, &next) }); err != nil {
		return App{}, err
	}
	return next.full, nil
}

// Delete removes app id and its keys. Its verifications stay until retention removes them.
func (r *Registry) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.apps[id]
	if !ok {
		return fault.Errorf(fault.NotFound, "app %q: not found", id)
	}
	if a.FromConfig {
		return fault.Errorf(fault.Conflict, "app %q: %w; remove it there", id, ErrFromConfig)
	}
	if err := r.write(ctx, func(ch *changes) error { r.deleteApp(ch, id); return nil }); err != nil {
		return err
	}
	_ = r.pools.SetApp(id, nil, 0)
	return nil
}

// RotateWebhookSecret gives app id a new webhook secret and returns it (shown only here). Webhooks already
// queued are signed with the new one when they are sent.
func (r *Registry) RotateWebhookSecret(ctx context.Context, id string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.apps[id]
	if !ok {
		return "", fault.Errorf(fault.NotFound, "app %q: not found", id)
	}
	if cur.FromConfig {
		return "", fault.Errorf(fault.Conflict, "app %q: %w; set webhook_secret there", id, ErrFromConfig)
	}
	secret := newSecret()
	next := *cur
	next.SealedWebhookSecret = r.seal(secret)
	if err := r.write(ctx, func(ch *changes) error { return r.putApp(ch, &next) }); err != nil {
		return "", err
	}
	return secret, nil
}

// cloneTemplates copies t and its inner maps: a PATCH decodes into the copy, never into the stored app's.
func cloneTemplates(t map[string]map[string]string) map[string]map[string]string {
	if t == nil {
		return nil
	}
	out := make(map[string]map[string]string, len(t))
	for ch, byLocale := range t {
		out[ch] = maps.Clone(byLocale)
	}
	return out
}
