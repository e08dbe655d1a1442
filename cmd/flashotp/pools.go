package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
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

// adminClient calls the engine's admin API.
type adminClient struct {
	url, token string
	http       *http.Client
}

func (a adminClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(a.url, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			e.Error.Code, e.Error.Message = "", res.Status
		}
		return &apiError{status: res.StatusCode, code: e.Error.Code, message: e.Error.Message, method: method, path: path}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// adminCommand is a command group that calls a running engine's admin API, with its --url and --token.
func adminCommand(use, short string) (*cobra.Command, *adminClient) {
	a := &adminClient{http: &http.Client{Timeout: 15 * time.Second}}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.token == "" {
				return errors.New("no admin token: give --token or set FLASHOTP_HTTP_ADMIN_TOKEN")
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&a.url, "url", envOr("FLASHOTP_ADMIN_URL", "http://127.0.0.1:8080"), "the engine's HTTP address (env FLASHOTP_ADMIN_URL)")
	cmd.PersistentFlags().StringVar(&a.token, "token", os.Getenv("FLASHOTP_HTTP_ADMIN_TOKEN"), "http.admin_token (env FLASHOTP_HTTP_ADMIN_TOKEN)")
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
			if err := a.do("GET", "/admin/pools", nil, &out); err != nil {
				return err
			}
			printPools(cmd.OutOrStdout(), out.Pools, out.Apps)
			return nil
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
			err := a.do("POST", "/admin/pools/"+args[0]+"/entries", entry, &added)
			if ae := (*apiError)(nil); errors.As(err, &ae) && ae.status == http.StatusNotFound {
				var p numberpool.Pool
				err = a.do("POST", "/admin/pools", numberpool.Pool{Name: args[0], Entries: []numberpool.Entry{entry}}, &p)
				if err == nil {
					added = p.Entries[0]
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added entry %s to pool %s\n", added.ID, args[0])
			return nil
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
			path := "/admin/pools/" + args[0]
			if len(args) == 2 {
				path += "/entries/" + args[1]
			}
			if err := a.do("DELETE", path, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "removed", strings.Join(args, " "))
			return nil
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
			if err := a.do("POST", "/admin/pools/"+args[0]+"/quarantine", target, &q); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "quarantined until %s\n", q.Until.Format(time.RFC3339))
			return nil
		},
	}
	release := &cobra.Command{
		Use:   "release POOL (--cli NUMBER | --entry ID)",
		Short: "Lift the quarantine of a caller ID or an entry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do("POST", "/admin/pools/"+args[0]+"/release", target, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "released")
			return nil
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

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func printPools(w io.Writer, pools []numberpool.Report, apps []numberpool.AppSpace) {
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
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
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
