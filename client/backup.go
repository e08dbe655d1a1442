package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Backup copies GET /admin/store/backup, a consistent copy of the engine's database, into w. There is no
// overall timeout, a large database takes as long as it takes: a transfer that stalls for idle is cut off
// instead.
func (c *Client) Backup(ctx context.Context, w io.Writer, idle time.Duration) (int64, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = idle
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(idle, cancel)
	defer timer.Stop()
	res, err := c.request(ctx, &http.Client{Transport: transport}, "GET", "/admin/store/backup", nil)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(w, idleReader{r: res.Body, timer: timer, idle: idle})
	switch {
	case err != nil && ctx.Err() != nil:
		return n, fmt.Errorf("the engine sent nothing for %s after %d bytes", idle, n)
	case err != nil:
		return n, fmt.Errorf("the engine stopped sending after %d bytes: %w", n, err)
	}
	return n, nil
}

// idleReader restarts timer at each read.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.timer.Reset(r.idle)
	return n, err
}
