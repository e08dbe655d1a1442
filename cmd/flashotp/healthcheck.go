package main

import (
	"context"
	"net"
	"time"

	"github.com/spf13/cobra"

	apiclient "flashotp/client"
	"flashotp/configs"
	"flashotp/httpapi"
)

// newHealthcheckCmd is `flashotp healthcheck`: GET /healthz of the local engine, exit 0 on 200 and 1
// otherwise. It exists for container HEALTHCHECKs: the image has no shell and no curl.
func newHealthcheckCmd() *cobra.Command {
	var path, url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local engine's /healthz answers 200 (for container health checks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				cfg, err := configs.Load(path)
				if err != nil {
					return err
				}
				url = healthURL(cfg.HTTP)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return apiclient.Health(ctx, url)
		},
	}
	cmd.Flags().StringVar(&path, "config", "configs/flashotp.yaml", "configuration file whose http.listen is probed")
	cmd.Flags().StringVar(&url, "url", "", "URL to probe instead (e.g. http://127.0.0.1:8080/healthz)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "longest wait for the answer")
	return cmd
}

// healthURL is the /healthz URL of an engine listening on h.Listen, reached over loopback when it listens
// on every address.
func healthURL(h httpapi.Settings) string {
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		host, port = "127.0.0.1", "8080" // Validate has refused such a listen address already
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if h.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}
