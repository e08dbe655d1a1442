package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	apiclient "flashotp/client"
	"flashotp/fault"
	"flashotp/numberpool"
)

func newPoolsCmd() *cobra.Command {
	cmd, a := adminCommand("pools", "Manage the caller-ID pools of a running engine (admin API)")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List pools, their entries, use and quarantine, and each app's code space",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pools, spaces, raw, err := a.Pools(cmd.Context())
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				printPools(cmd.OutOrStdout(), pools)
				fmt.Fprintln(cmd.OutOrStdout())
				printSpaces(cmd.OutOrStdout(), spaces)
				return nil
			})
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "get POOL",
		Short: "Show one pool: its entries, their use, and its quarantines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pool, raw, err := a.Pool(cmd.Context(), args[0])
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				printPools(cmd.OutOrStdout(), []numberpool.Report{pool})
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
			added, raw, err := a.AddEntry(cmd.Context(), args[0], entry)
			if e := (*apiclient.Error)(nil); errors.As(err, &e) && e.Status == http.StatusNotFound && e.Code == fault.NotFound {
				var p numberpool.Pool
				p, raw, err = a.CreatePool(cmd.Context(), numberpool.Pool{Name: args[0], Entries: []numberpool.Entry{entry}})
				if err == nil {
					added = p.Entries[0]
				}
			}
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
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
			var raw []byte
			var err error
			if len(args) == 2 {
				raw, err = a.RemoveEntry(cmd.Context(), args[0], args[1])
			} else {
				raw, err = a.DeletePool(cmd.Context(), args[0])
			}
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "removed", strings.Join(args, " "))
				return err
			})
		},
	})

	var target numberpool.Target
	var dur time.Duration
	quarantine := &cobra.Command{
		Use:   "quarantine POOL (--cli NUMBER | --entry ID)",
		Short: "Leave a caller ID or an entry out of picks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target.Pool, target.For = args[0], numberpool.Duration(dur)
			q, raw, err := a.Quarantine(cmd.Context(), target)
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
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
			target.Pool = args[0]
			raw, err := a.Release(cmd.Context(), target)
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
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
