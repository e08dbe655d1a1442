// Package client is a small Go client of a running engine's HTTP API: the admin API (apps, keys, pools,
// backup) and /healthz. Each method returns the answer decoded and its body as the engine sent it, for
// callers that print it as it is (`flashotp ... -o json`). Every error answer is an *Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"flashotp/fault"
)

// ErrNoToken is returned by every admin call of a Client without a Token.
var ErrNoToken = errors.New("no admin token")

// Error is an error answer of the API: its HTTP status and the code and message of its body
// {"error": {"code": ..., "message": ...}} (docs/api.md, "Errors"). An answer without such a body has no
// Code and the HTTP status line as its Message. Its Code is the engine's own (package fault).
type Error struct {
	Status       int
	Code         fault.Code
	Message      string
	Method, Path string // the request answered
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// Client calls the admin API of the engine at URL (http://HOST:PORT or https://HOST:PORT) with the
// bearer Token (http.admin_token).
type Client struct {
	URL, Token string
	HTTP       *http.Client // http.DefaultClient when nil
}

// request sends a request to the admin API and returns the answer when it is a success; an error answer
// is read and returned as an *Error.
func (c *Client) request(ctx context.Context, hc *http.Client, method, path string, body any) (*http.Response, error) {
	if c.Token == "" {
		return nil, ErrNoToken
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var e struct {
		Error struct {
			Code    fault.Code
			Message string
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
		e.Error.Code, e.Error.Message = "", res.Status
	}
	return nil, &Error{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Method: method, Path: path}
}

// do calls the admin API and returns the answer's body, decoded into out too when out is not nil.
func (c *Client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	res, err := c.request(ctx, c.HTTP, method, path, body)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not what this flashotp expects: %w", method, path, err)
		}
	}
	return data, nil
}
