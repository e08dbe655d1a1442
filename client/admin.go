package client

import (
	"context"
	"net/url"

	"flashotp/apps"
	"flashotp/numberpool"
)

// The admin API's calls (docs/api.md, "Admin API"). Each returns the answer decoded and its body as the
// engine sent it (empty for an answer without one).

// Apps is GET /admin/apps.
func (c *Client) Apps(ctx context.Context) ([]apps.App, []byte, error) {
	var out struct {
		Apps []apps.App `json:"apps"`
	}
	raw, err := c.do(ctx, "GET", "/admin/apps", nil, &out)
	return out.Apps, raw, err
}

// App is GET /admin/apps/{id}.
func (c *Client) App(ctx context.Context, id string) (apps.App, []byte, error) {
	var out apps.App
	raw, err := c.do(ctx, "GET", appPath(id), nil, &out)
	return out, raw, err
}

// CreateApp is POST /admin/apps: settings holds the app's id, pools and other settings as the API names
// them.
func (c *Client) CreateApp(ctx context.Context, settings map[string]any) (apps.Created, []byte, error) {
	var out apps.Created
	raw, err := c.do(ctx, "POST", "/admin/apps", settings, &out)
	return out, raw, err
}

// UpdateApp is PATCH /admin/apps/{id}: only the settings given change.
func (c *Client) UpdateApp(ctx context.Context, id string, settings map[string]any) (apps.App, []byte, error) {
	var out apps.App
	raw, err := c.do(ctx, "PATCH", appPath(id), settings, &out)
	return out, raw, err
}

// DeleteApp is DELETE /admin/apps/{id}.
func (c *Client) DeleteApp(ctx context.Context, id string) ([]byte, error) {
	return c.do(ctx, "DELETE", appPath(id), nil, nil)
}

// Keys is GET /admin/apps/{app}/keys.
func (c *Client) Keys(ctx context.Context, app string) ([]apps.Key, []byte, error) {
	var out struct {
		Keys []apps.Key `json:"keys"`
	}
	raw, err := c.do(ctx, "GET", appPath(app)+"/keys", nil, &out)
	return out.Keys, raw, err
}

// CreateKey is POST /admin/apps/{app}/keys: the new key, with its secret.
func (c *Client) CreateKey(ctx context.Context, app string) (apps.Key, []byte, error) {
	return c.key(ctx, "POST", appPath(app)+"/keys")
}

// RotateKey is POST /admin/apps/{app}/keys/{key}/rotate: the key, with its new secret.
func (c *Client) RotateKey(ctx context.Context, app, key string) (apps.Key, []byte, error) {
	return c.key(ctx, "POST", keyPath(app, key)+"/rotate")
}

// RevokeKey is DELETE /admin/apps/{app}/keys/{key}.
func (c *Client) RevokeKey(ctx context.Context, app, key string) (apps.Key, []byte, error) {
	return c.key(ctx, "DELETE", keyPath(app, key))
}

func (c *Client) key(ctx context.Context, method, path string) (apps.Key, []byte, error) {
	var out apps.Key
	raw, err := c.do(ctx, method, path, nil, &out)
	return out, raw, err
}

// Pools is GET /admin/pools: every pool, and each app's code space.
func (c *Client) Pools(ctx context.Context) ([]numberpool.Report, []numberpool.AppSpace, []byte, error) {
	var out struct {
		Pools []numberpool.Report   `json:"pools"`
		Apps  []numberpool.AppSpace `json:"apps"`
	}
	raw, err := c.do(ctx, "GET", "/admin/pools", nil, &out)
	return out.Pools, out.Apps, raw, err
}

// Pool is GET /admin/pools/{name}.
func (c *Client) Pool(ctx context.Context, name string) (numberpool.Report, []byte, error) {
	var out numberpool.Report
	raw, err := c.do(ctx, "GET", poolPath(name), nil, &out)
	return out, raw, err
}

// CreatePool is POST /admin/pools.
func (c *Client) CreatePool(ctx context.Context, p numberpool.Pool) (numberpool.Pool, []byte, error) {
	var out numberpool.Pool
	raw, err := c.do(ctx, "POST", "/admin/pools", p, &out)
	return out, raw, err
}

// DeletePool is DELETE /admin/pools/{name}.
func (c *Client) DeletePool(ctx context.Context, name string) ([]byte, error) {
	return c.do(ctx, "DELETE", poolPath(name), nil, nil)
}

// AddEntry is POST /admin/pools/{pool}/entries: the entry added, with its ID.
func (c *Client) AddEntry(ctx context.Context, pool string, e numberpool.Entry) (numberpool.Entry, []byte, error) {
	var out numberpool.Entry
	raw, err := c.do(ctx, "POST", poolPath(pool)+"/entries", e, &out)
	return out, raw, err
}

// RemoveEntry is DELETE /admin/pools/{pool}/entries/{id}.
func (c *Client) RemoveEntry(ctx context.Context, pool, id string) ([]byte, error) {
	return c.do(ctx, "DELETE", poolPath(pool)+"/entries/"+url.PathEscape(id), nil, nil)
}

// Quarantine is POST /admin/pools/{t.Pool}/quarantine.
func (c *Client) Quarantine(ctx context.Context, t numberpool.Target) (numberpool.Quarantine, []byte, error) {
	var out numberpool.Quarantine
	raw, err := c.do(ctx, "POST", poolPath(t.Pool)+"/quarantine", t, &out)
	return out, raw, err
}

// Release is POST /admin/pools/{t.Pool}/release.
func (c *Client) Release(ctx context.Context, t numberpool.Target) ([]byte, error) {
	return c.do(ctx, "POST", poolPath(t.Pool)+"/release", t, nil)
}

func appPath(id string) string       { return "/admin/apps/" + url.PathEscape(id) }
func keyPath(app, key string) string { return appPath(app) + "/keys/" + url.PathEscape(key) }
func poolPath(name string) string    { return "/admin/pools/" + url.PathEscape(name) }
