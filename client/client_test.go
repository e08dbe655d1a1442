package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestErrorAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		switch r.URL.Path {
		case "/admin/pools/a%2Fb", "/admin/pools/a/b":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no pool a/b"}}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>proxy</html>"))
		}
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL + "/", Token: "tok"}
	ctx := context.Background()

	_, _, err := c.Pool(ctx, "a/b")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "not_found" || e.Message != "no pool a/b" {
		t.Fatalf("Pool: %#v", err)
	}
	if got, want := err.Error(), "GET /admin/pools/a%2Fb: 404 not_found: no pool a/b"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if _, _, err := c.Apps(ctx); !errors.As(err, &e) || e.Code != "" || e.Message != "502 Bad Gateway" {
		t.Errorf("Apps behind a broken proxy: %#v", err)
	}
	if _, _, err := (&Client{URL: srv.URL}).Apps(ctx); !errors.Is(err, ErrNoToken) {
		t.Errorf("Apps without a token: %v", err)
	}
}
