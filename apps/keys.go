package apps

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"flashotp/fault"
)

// Key is an API key as the admin API shows it; Secret is set only in the answer that made it.
type Key struct {
	Key        string     `json:"key"`
	AppID      string     `json:"appid"`
	Secret     string     `json:"secret,omitempty"`
	FromConfig bool       `json:"from_config"`
	CreatedAt  time.Time  `json:"created_at"`
	RotatedAt  *time.Time `json:"rotated_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// storedKey is a key as the store keeps it: the secret only as a MAC and sealed.
type storedKey struct {
	Key
	SecretMAC []byte `json:"secret_mac"`
	Sealed    []byte `json:"sealed_secret"`
}

func (r *Registry) putKey(ch *changes, k *storedKey) error {
	v, err := json.Marshal(k)
	if err != nil {
		return err
	}
	ch.keys[k.Key.Key] = v
	r.keys[k.Key.Key] = k
	return nil
}

func (r *Registry) newKey(appID, key, secret string, now time.Time) *storedKey {
	return &storedKey{Key: Key{Key: key, AppID: appID, CreatedAt: now}, SecretMAC: r.secretMAC(secret), Sealed: r.seal(secret)}
}

func (r *Registry) secretMAC(secret string) []byte {
	m := hmac.New(sha256.New, r.macKey)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

func (r *Registry) seal(secret string) []byte { return r.box.Seal([]byte(secret), nil) }

func (r *Registry) unseal(sealed []byte) ([]byte, error) { return r.box.Open(sealed, nil) }

func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newKeyID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "fk_" + hex.EncodeToString(b)
}

// Keys returns app id's keys, without secrets, oldest first.
func (r *Registry) Keys(id string) ([]Key, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.apps[id]; !ok {
		return nil, fault.Errorf(fault.NotFound, "app %q: not found", id)
	}
	var out []Key
	for _, k := range r.keys {
		if k.AppID == id {
			out = append(out, k.Key)
		}
	}
	slices.SortFunc(out, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// CreateKey makes a new key for app id and returns it with its secret.
func (r *Registry) CreateKey(ctx context.Context, id string) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.apps[id]; !ok {
		return Key{}, fault.Errorf(fault.NotFound, "app %q: not found", id)
	}
	secret := newSecret()
	k := r.newKey(id, newKeyID(), secret, r.now().UTC())
	if err := r.write(ctx, func(ch *changes) error { return r.putKey(ch, k) }); err != nil {
		return Key{}, err
	}
	out := k.Key
	out.Secret = secret
	return out, nil
}

// changeKey applies fn to a copy of app id's key and stores it.
func (r *Registry) changeKey(ctx context.Context, id, key string, fn func(k *storedKey, now time.Time)) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.keys[key]
	if !ok || cur.AppID != id {
		return Key{}, fault.Errorf(fault.NotFound, "key %q of app %q: not found", key, id)
	}
	if cur.FromConfig {
		return Key{}, fault.Errorf(fault.Conflict, "key %q: %w; change it there", key, ErrFromConfig)
	}
	if cur.RevokedAt != nil {
		return Key{}, fault.Errorf(fault.Conflict, "key %q: %w", key, ErrRevoked)
	}
	next := *cur
	fn(&next, r.now().UTC())
	if err := r.write(ctx, func(ch *changes) error { return r.putKey(ch, &next) }); err != nil {
		return Key{}, err
	}
	return next.Key, nil
}

// RotateKey gives key a new secret; the old one stops working at once. (For an overlap, create a second
// key, move the clients, then revoke the first.)
func (r *Registry) RotateKey(ctx context.Context, id, key string) (Key, error) {
	secret := newSecret()
	k, err := r.changeKey(ctx, id, key, func(k *storedKey, now time.Time) {
		k.SecretMAC, k.Sealed, k.RotatedAt = r.secretMAC(secret), r.seal(secret), &now
	})
	if err != nil {
		return Key{}, err
	}
	k.Secret = secret
	return k, nil
}

// RevokeKey stops key from working for good; it stays listed as revoked.
func (r *Registry) RevokeKey(ctx context.Context, id, key string) (Key, error) {
	return r.changeKey(ctx, id, key, func(k *storedKey, now time.Time) { k.RevokedAt = &now })
}
