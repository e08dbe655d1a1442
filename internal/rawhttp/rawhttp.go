// Package rawhttp sends HTTP requests byte for byte, as no client library would frame them, for the tests of
// how the engine frames requests (smuggling: two lengths, bare CR, NUL).
package rawhttp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Exchange writes req on a new connection to addr and reads up to limit responses, with their bodies, until
// the server closes the connection; closed is false when it was still open after 5 s.
func Exchange(t testing.TB, addr, req string, limit int) (res []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for range limit {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			var ne net.Error
			return res, bodies, !(errors.As(err, &ne) && ne.Timeout())
		}
		b, _ := io.ReadAll(resp.Body)
		res, bodies = append(res, resp), append(bodies, string(b))
	}
	return res, bodies, false
}
