package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	apiclient "flashotp/client"
	"flashotp/fault"
)

// Environment variables the admin commands read when their flag is not given. They are read when the
// command runs, never shown as a flag's default: --help must not print the token.
const (
	envAdminURL   = "FLASHOTP_ADMIN_URL"
	envAdminToken = "FLASHOTP_HTTP_ADMIN_TOKEN"
)

const defaultAdminURL = "http://127.0.0.1:8080"

// adminClient is the admin API's client with the flags that set it up, and how its answers are printed.
type adminClient struct {
	apiclient.Client
	output string // text or json
}

// adminCommand is a command group that calls a running engine's admin API, with its --url, --token and
// --output.
func adminCommand(use, short string) (*cobra.Command, *adminClient) {
	a := &adminClient{Client: apiclient.Client{HTTP: &http.Client{Timeout: 15 * time.Second}}}
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) },
	}
	a.flags(cmd)
	cmd.PersistentFlags().StringVarP(&a.output, "output", "o", "text", "text, or json: the admin API's answer as it is")
	return cmd, a
}

// flags adds --url and --token to cmd and its subcommands.
func (a *adminClient) flags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&a.URL, "url", defaultAdminURL, "the engine's HTTP address (env "+envAdminURL+")")
	fs.StringVar(&a.Token, "token", "", "http.admin_token of the engine (env "+envAdminToken+")")
}

// setup completes the flags of cmd from the environment and checks them.
func (a *adminClient) setup(cmd *cobra.Command) error {
	fs := cmd.Flags()
	if v := os.Getenv(envAdminURL); v != "" && !fs.Changed("url") {
		a.URL = v
	}
	if !fs.Changed("token") {
		a.Token = os.Getenv(envAdminToken)
	}
	if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want the engine's address as http://HOST:PORT or https://HOST:PORT", a.URL)
	}
	if a.output != "text" && a.output != "json" {
		return fmt.Errorf("--output %q: want text or json", a.output)
	}
	return nil
}

// explain says what the operator can do about the client's errors that have a remedy here.
func (a *adminClient) explain(err error) error {
	var e *apiclient.Error
	switch {
	case errors.Is(err, apiclient.ErrNoToken):
		return errors.New("no admin token: give --token or set " + envAdminToken)
	case errors.As(err, &e) && e.Code == fault.AdminDisabled:
		return fmt.Errorf("the admin API is off on the engine at %s: set http.admin_token in its configuration "+
			"(or %s in its environment) and restart it, then give the same token here (--token or %s)", a.URL, envAdminToken, envAdminToken)
	}
	return err
}

// show prints an answer of the admin API, or returns its error: as the API sent it with --output json
// (nothing for an answer without a body), else as text prints it.
func (a *adminClient) show(w io.Writer, raw []byte, err error, text func() error) error {
	if err != nil {
		return a.explain(err)
	}
	if a.output == "json" {
		if len(raw) == 0 {
			return nil
		}
		_, err := w.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
		return err
	}
	return text()
}

// printJSON writes v indented: what the admin API answered, secrets included (they are shown only once).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
