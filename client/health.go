package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
)

// ErrUnhealthy is returned by Health when /healthz did not answer 200.
var ErrUnhealthy = errors.New("unhealthy")

// Health reports nil when url (an engine's /healthz) answers 200.
func Health(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The engine's own certificate names the public host, not the loopback address probed here; this
	// probe checks liveness, not identity, and sends nothing secret.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnhealthy, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s", ErrUnhealthy, url, res.Status)
	}
	return nil
}
