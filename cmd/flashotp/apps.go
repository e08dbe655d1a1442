package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"flashotp/apps"
)

// printJSON writes v indented: what the admin API answered, secrets included (they are shown only once).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// settingsFlag reads --set, a JSON object of app settings (docs/api.md, "Apps").
func settingsFlag(set string, into map[string]any) error {
	if set == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(set), &into); err != nil {
		return fmt.Errorf("--set: want a JSON object of app settings: %w", err)
	}
	return nil
}

func newAppsCmd() *cobra.Command {
	cmd, a := adminCommand("apps", "Manage the apps (API clients) of a running engine (admin API)")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List apps and their settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Apps []apps.App `json:"apps"`
			}
			raw, err := a.do("GET", "/admin/apps", nil, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error { return printApps(cmd.OutOrStdout(), out.Apps) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "get ID",
		Short: "Show one app (-o json: every setting)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out apps.App
			raw, err := a.do("GET", "/admin/apps/"+url.PathEscape(args[0]), nil, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error { return printApps(cmd.OutOrStdout(), []apps.App{out}) })
		},
	})

	var pools []string
	var set string
	create := &cobra.Command{
		Use:   "create ID --pools POOL[,POOL]",
		Short: "Create an app; prints its first API key and secret, and its webhook secret (shown only now)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"id": args[0], "pools": pools}
			if err := settingsFlag(set, body); err != nil {
				return err
			}
			var out apps.Created
			raw, err := a.do("POST", "/admin/apps", body, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error { return printJSON(cmd.OutOrStdout(), out) })
		},
	}
	create.Flags().StringSliceVar(&pools, "pools", nil, "pools its caller IDs come from")
	create.Flags().StringVar(&set, "set", "", `other settings as JSON, e.g. '{"ttl":"10m","allowed_countries":["GB"]}'`)
	cmd.AddCommand(create)

	update := &cobra.Command{
		Use:   "update ID --set JSON",
		Short: "Change an app's settings (only those given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if err := settingsFlag(set, body); err != nil {
				return err
			}
			var out apps.App
			raw, err := a.do("PATCH", "/admin/apps/"+url.PathEscape(args[0]), body, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error { return printJSON(cmd.OutOrStdout(), out) })
		},
	}
	update.Flags().StringVar(&set, "set", "", `settings as JSON, e.g. '{"max_attempts":3}'`)
	cmd.AddCommand(update)

	cmd.AddCommand(&cobra.Command{
		Use:   "delete ID",
		Short: "Delete an app and its keys (its verifications stay until retention removes them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.do("DELETE", "/admin/apps/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "deleted app", args[0])
				return err
			})
		},
	})
	return cmd
}

// printApps prints one line per app.
func printApps(out io.Writer, list []apps.App) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "APP\tFROM\tPOOLS\tCODE\tTTL\tATTEMPTS\tCOUNTRIES\tWEBHOOK")
	for _, app := range list {
		from := "api"
		if app.FromConfig {
			from = "config"
		}
		countries := strings.Join(app.AllowedCountries, ",")
		if countries == "" {
			countries = "any"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", app.ID, from, strings.Join(app.Pools, ","), app.CodeLength,
			jsonDuration(app.TTL), app.MaxAttempts, countries, app.WebhookURL)
	}
	return w.Flush()
}

func jsonDuration(d apps.Duration) string {
	b, _ := d.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

func newKeysCmd() *cobra.Command {
	cmd, a := adminCommand("keys", "Manage the API keys of an app of a running engine (admin API)")
	cmd.AddCommand(&cobra.Command{
		Use:   "list APP",
		Short: "List an app's keys (never their secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Keys []apps.Key `json:"keys"`
			}
			raw, err := a.do("GET", "/admin/apps/"+url.PathEscape(args[0])+"/keys", nil, &out)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), raw, func() error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KEY\tSTATE\tFROM\tCREATED")
				for _, k := range out.Keys {
					state, from := "active", "api"
					if k.RevokedAt != nil {
						state = "revoked " + k.RevokedAt.Format("2006-01-02T15:04:05Z")
					}
					if k.FromConfig {
						from = "config"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.Key, state, from, k.CreatedAt.Format("2006-01-02T15:04:05Z"))
				}
				return w.Flush()
			})
		},
	})
	for _, c := range []struct {
		use, short, method, suffix string
		args                       int
	}{
		{"create APP", "Make a new key for an app; prints its secret (shown only now)", "POST", "/keys", 1},
		{"rotate APP KEY", "Give a key a new secret (the old one stops working at once); prints it", "POST", "/rotate", 2},
		{"revoke APP KEY", "Revoke a key", "DELETE", "", 2},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   c.use,
			Short: c.short,
			Args:  cobra.ExactArgs(c.args),
			RunE: func(cmd *cobra.Command, args []string) error {
				path := "/admin/apps/" + url.PathEscape(args[0]) + "/keys"
				if c.args == 2 {
					path += "/" + url.PathEscape(args[1]) + strings.TrimPrefix(c.suffix, "/keys")
				}
				var out apps.Key
				raw, err := a.do(c.method, path, nil, &out)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), raw, func() error { return printJSON(cmd.OutOrStdout(), out) })
			},
		})
	}
	return cmd
}
