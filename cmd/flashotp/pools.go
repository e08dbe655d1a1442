package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"flashotp/numberpool"
)

// apiError is an error answer of the admin API.
type apiError struct {
	status        int
	code, message string
	method, path  string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, e.code, e.message)
}

// Environment variables the admin commands read when their flag is not given. They are read when the
// command runs, never shown as a flag's default: --help must not print the token.
const (
	envAdminURL   = "FLASHOTP_ADMIN_URL"
	envAdminToken = "FLASHOTP_HTTP_ADMIN_TOKEN"
)

const defaultAdminURL = "http://127.0.0.1:8080"

// adminClient calls the engine's admin API.
type adminClient struct {
	url, token string
	output     string // text or json
	http       *http.Client
}

// request sends a request to the admin API and returns the answer when it is a success; an error answer
// is read and returned as an error.
func (a *adminClient) request(ctx context.Context, client *http.Client, method, path string, body any) (*http.Response, error) {
	if a.token == "" {
		return nil, errors.New("no admin token: give --token or set " + envAdminToken)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.url, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
		e.Error.Code, e.Error.Message = "", res.Status
	}
	if e.Error.Code == "admin_disabled" {
		return nil, fmt.Errorf("the admin API is off on the engine at %s: set http.admin_token in its configuration "+
			"(or %s in its environment) and restart it, then give the same token here (--token or %s)", a.url, envAdminToken, envAdminToken)
	}
	return nil, &apiError{status: res.StatusCode, code: e.Error.Code, message: e.Error.Message, method: method, path: path}
}

// do calls the admin API and returns the answer's body, decoded into out too when out is not nil.
func (a *adminClient) do(method, path string, body, out any) ([]byte, error) {
	res, err := a.request(context.Background(), a.http, method, path, body)
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

// show prints an answer of the admin API: as the API sent it with --output json (nothing for an answer
// without a body), else as text prints it.
func (a *adminClient) show(w io.Writer, raw []byte, text func() error) error {
	if a.output == "json" {
		if len(raw) == 0 {
			return nil
		}
		_, err := w.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
		return err
	}
	return text()
}

// flags adds --url and --token to cmd and its subcommands.
func (a *adminClient) flags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&a.url, "url", defaultAdminURL, "the engine's HTTP address (env "+envAdminURL+")")
	fs.StringVar(&a.token, "token", "", "http.admin_token of the engine (env "+envAdminToken+")")
}

// setup completes the flags of cmd from the environment and checks them.
func (a *adminClient) setup(cmd *cobra.Command) error {
	fs := cmd.Flags()
	if v := os.Getenv(envAdminURL); v != "" && !fs.Changed("url") {
		a.url = v
	}
	if !fs.Changed("token") {
		a.token = os.Getenv(envAdminToken)
	}
	if u, err := url.Parse(a.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want the engine's address as http://HOST:PORT or https://HOST:PORT", a.url)
	}
	if a.output != "text" && a.output != "json" {
		return fmt.Errorf("--output %q: want text or json", a.output)
	}
	return nil
}

// adminCommand is a command group that calls a running engine's admin API, with its --url, --token and
// --output.
func adminCommand(use, short string) (*cobra.Command, *adminClient) {
	a := &adminClient{http: &http.Client{Timeout: 15 * time.Second}}
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) },
	}
	a.flags(cmd)
	cmd.PersistentFlags().StringVarP(&a.output, "output", "o", "text", "text, or json: the admin API's answer as it is")
	return cmd, a
}

func newPoolsCmd() *cobra.Command {
	cmd, a := adminCommand("pools", "Manage the caller-ID pools of a running engine (admin API)")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List pools, their entries, use and quarantine, and each app's code space",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Pools []numberpool.Report   `json:"pools"`
				Apps  []numberpool.AppSpace `json:"apps"`
			}
			raw, err := a.do("GET", "/admin/pools", nil, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				printPools(cmd.OutOrStdout(), out.Pools)
				fmt.Fprintln(cmd.OutOrStdout())
				printSpaces(cmd.OutOrStdout(), out.Apps)
				return nil
			})
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "get POOL",
		Short: "Show one pool: its entries, their use, and its quarantines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out numberpool.Report
			raw, err := a.do("GET", "/admin/pools/"+url.PathEscape(args[0]), nil, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				printPools(cmd.OutOrStdout(), []numberpool.Report{out})
				return nil
			})
		},
	})

	var entry numberpool.Entry
	var disabled bool
	add := &cobra.Command{
		Use:   "add POOL NUMBER...",
		Short: "Add an entry (one X pattern, one +FIRST-+LAST range, or numbers) to a pool, creating the pool if needed",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			entry.Numbers, entry.Enabled = args[1:], !disabled
			var added numberpool.Entry
			raw, err := a.do("POST", "/admin/pools/"+url.PathEscape(args[0])+"/entries", entry, &added)
			if ae := (*apiError)(nil); errors.As(err, &ae) && ae.status == http.StatusNotFound && ae.code == "not_found" {
				var p numberpool.Pool
				raw, err = a.do("POST", "/admin/pools", numberpool.Pool{Name: args[0], Entries: []numberpool.Entry{entry}}, &p)
				if err == nil {
					added = p.Entries[0]
				}
			}
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "added entry %s to pool %s\n", added.ID, args[0])
				return err
			})
		},
	}
	add.Flags().StringVar(&entry.ID, "id", "", "entry ID (default: the next free eN)")
	add.Flags().StringSliceVar(&entry.Countries, "countries", nil, "ISO 3166 codes of the destinations it serves (default: any)")
	add.Flags().StringSliceVar(&entry.Trunks, "trunks", nil, "trunks it may go out on (default: any)")
	add.Flags().IntVar(&entry.Weight, "weight", 1, "share among candidate entries, times its size")
	add.Flags().BoolVar(&disabled, "disabled", false, "add it disabled")
	cmd.AddCommand(add)

	cmd.AddCommand(&cobra.Command{
		Use:   "remove POOL [ENTRY]",
		Short: "Remove an entry, or a whole pool",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/admin/pools/" + url.PathEscape(args[0])
			if len(args) == 2 {
				path += "/entries/" + url.PathEscape(args[1])
			}
			raw, err := a.do("DELETE", path, nil, nil)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "removed", strings.Join(args, " "))
				return err
			})
		},
	})

	var target struct {
		CLI    string              `json:"cli,omitempty"`
		Entry  string              `json:"entry,omitempty"`
		For    numberpool.Duration `json:"for,omitempty"`
		Reason string              `json:"reason,omitempty"`
	}
	var dur time.Duration
	quarantine := &cobra.Command{
		Use:   "quarantine POOL (--cli NUMBER | --entry ID)",
		Short: "Leave a caller ID or an entry out of picks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target.For = numberpool.Duration(dur)
			var q numberpool.Quarantine
			raw, err := a.do("POST", "/admin/pools/"+url.PathEscape(args[0])+"/quarantine", target, &q)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "quarantined until %s\n", q.Until.Format(time.RFC3339))
				return err
			})
		},
	}
	release := &cobra.Command{
		Use:   "release POOL (--cli NUMBER | --entry ID)",
		Short: "Lift the quarantine of a caller ID or an entry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.do("POST", "/admin/pools/"+url.PathEscape(args[0])+"/release", target, nil)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "released")
				return err
			})
		},
	}
	for _, c := range []*cobra.Command{quarantine, release} {
		c.Flags().StringVar(&target.CLI, "cli", "", "the caller ID, E.164")
		c.Flags().StringVar(&target.Entry, "entry", "", "the entry ID")
		c.MarkFlagsOneRequired("cli", "entry")
		c.MarkFlagsMutuallyExclusive("cli", "entry")
	}
	quarantine.Flags().DurationVar(&dur, "for", 0, "how long (default: the pool's quarantine_for)")
	quarantine.Flags().StringVar(&target.Reason, "reason", "", "why, for the record")
	cmd.AddCommand(quarantine, release)
	return cmd
}

// printPools prints each pool's entries, then their quarantines.
func printPools(w io.Writer, pools []numberpool.Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tENTRY\tNUMBERS\tCOUNTRIES\tTRUNKS\tWEIGHT\tENABLED\tUSES\tSOURCE")
	for _, p := range pools {
		src := "admin"
		if p.FromConfig {
			src = "config"
		}
		for _, e := range p.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%t\t%d\t%s\n", p.Name, e.ID, strings.Join(e.Numbers, ","),
				orAny(e.Countries), orAny(e.Trunks), e.Weight, e.Enabled, p.Uses[e.ID], src)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tQUARANTINED\tUNTIL\tREJECTIONS\tREASON")
	for _, p := range pools {
		for _, k := range slices.Sorted(maps.Keys(p.Quarantine)) {
			q := p.Quarantine[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, k, q.Until.Format(time.RFC3339), q.Rejections, q.Reason)
		}
	}
	tw.Flush()
}

// printSpaces prints each app's code space per destination.
func printSpaces(w io.Writer, apps []numberpool.AppSpace) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tDESTINATION\tCODES\tBITS")
	for _, a := range apps {
		for _, d := range slices.Sorted(maps.Keys(a.Spaces)) {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\n", a.App, d, a.Spaces[d].Codes, a.Spaces[d].Bits)
		}
	}
	tw.Flush()
}

func orAny(s []string) string {
	if len(s) == 0 {
		return "any"
	}
	return strings.Join(s, ",")
}
