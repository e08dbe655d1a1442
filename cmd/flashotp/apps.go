package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"flashotp/apps"
)

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
			list, raw, err := a.Apps(cmd.Context())
			return a.show(cmd.OutOrStdout(), raw, err, func() error { return printApps(cmd.OutOrStdout(), list) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "get ID",
		Short: "Show one app (-o json: every setting)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, raw, err := a.App(cmd.Context(), args[0])
			return a.show(cmd.OutOrStdout(), raw, err, func() error { return printApps(cmd.OutOrStdout(), []apps.App{app}) })
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
			created, raw, err := a.CreateApp(cmd.Context(), body)
			return a.show(cmd.OutOrStdout(), raw, err, func() error { return printJSON(cmd.OutOrStdout(), created) })
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
			app, raw, err := a.UpdateApp(cmd.Context(), args[0], body)
			return a.show(cmd.OutOrStdout(), raw, err, func() error { return printJSON(cmd.OutOrStdout(), app) })
		},
	}
	update.Flags().StringVar(&set, "set", "", `settings as JSON, e.g. '{"max_attempts":3}'`)
	cmd.AddCommand(update)

	cmd.AddCommand(&cobra.Command{
		Use:   "delete ID",
		Short: "Delete an app and its keys (its verifications stay until retention removes them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.DeleteApp(cmd.Context(), args[0])
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
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
			keys, raw, err := a.Keys(cmd.Context(), args[0])
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KEY\tSTATE\tFROM\tCREATED")
				for _, k := range keys {
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
		use, short string
		args       int
		call       func(ctx context.Context, args []string) (apps.Key, []byte, error)
	}{
		{"create APP", "Make a new key for an app; prints its secret (shown only now)", 1,
			func(ctx context.Context, args []string) (apps.Key, []byte, error) { return a.CreateKey(ctx, args[0]) }},
		{"rotate APP KEY", "Give a key a new secret (the old one stops working at once); prints it", 2,
			func(ctx context.Context, args []string) (apps.Key, []byte, error) {
				return a.RotateKey(ctx, args[0], args[1])
			}},
		{"revoke APP KEY", "Revoke a key", 2,
			func(ctx context.Context, args []string) (apps.Key, []byte, error) {
				return a.RevokeKey(ctx, args[0], args[1])
			}},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   c.use,
			Short: c.short,
			Args:  cobra.ExactArgs(c.args),
			RunE: func(cmd *cobra.Command, args []string) error {
				key, raw, err := c.call(cmd.Context(), args)
				return a.show(cmd.OutOrStdout(), raw, err, func() error { return printJSON(cmd.OutOrStdout(), key) })
			},
		})
	}
	return cmd
}
