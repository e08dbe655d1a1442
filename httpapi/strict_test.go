package httpapi_test

import (
	"strings"
	"testing"

	"flashotp/internal/rawhttp"
)

// Requests a reverse proxy and fasthttp could frame differently are refused 400 and their connection
// closed: the request smuggled behind them is never answered.
func TestStrictFraming(t *testing.T) {
	smuggled := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, req string
		refused   bool
	}{
		{"content-length and chunked", "POST /otp/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"chunked and content-length", "POST /otp/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"two content-lengths", "POST /otp/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"two equal content-lengths", "POST /otp/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"bare CR in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + smuggled, true},
		{"NUL in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + smuggled, true},
		{"escape in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n" + smuggled, true},
		{"folded value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" + smuggled, true},
		{"plain keep-alive requests", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n" + smuggled, false},
	}
	e := newEnv(t)
	addr := strings.TrimPrefix(e.listen(t), "http://")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := 5
			if !tt.refused {
				limit = 2
			}
			res, bodies, closed := rawhttp.Exchange(t, addr, tt.req, limit)
			if !tt.refused {
				if len(res) != 2 || res[0].StatusCode != 200 || res[1].StatusCode != 200 {
					t.Fatalf("want two 200s, got %d responses %v", len(res), bodies)
				}
				return
			}
			if len(res) != 1 {
				t.Fatalf("got %d responses, want 1 (the smuggled request answered): %q", len(res), bodies)
			}
			wantError(t, response{res[0].StatusCode, res[0].Header, []byte(bodies[0])}, 400, "invalid_request")
			if !closed {
				t.Error("connection left open after the refusal")
			}
		})
	}
}
