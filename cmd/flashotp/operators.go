package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"flashotp/console"
)

func newOperatorsCmd() *cobra.Command {
	cmd, a := adminCommand("operators", "Manage the web console's operator accounts of a running engine (admin API)")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the operators and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, raw, err := a.Operators(cmd.Context())
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tCREATED")
				for _, op := range ops {
					fmt.Fprintf(w, "%s\t%s\t%s\n", op.Name, op.Role, op.CreatedAt.Format("2006-01-02T15:04:05Z"))
				}
				return w.Flush()
			})
		},
	})
	var role string
	add := &cobra.Command{
		Use:   "add NAME --role viewer|admin",
		Short: "Add an operator; the password is read from standard input (asked twice, unseen, on a terminal), never from a flag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			op, raw, err := a.AddOperator(cmd.Context(), args[0], role, password)
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "added operator %s (%s)\n", op.Name, op.Role)
				return err
			})
		},
	}
	add.Flags().StringVar(&role, "role", console.RoleViewer, "viewer (reads everything, changes nothing) or admin")
	cmd.AddCommand(add)
	cmd.AddCommand(&cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an operator; its console sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.RemoveOperator(cmd.Context(), args[0])
			return a.show(cmd.OutOrStdout(), raw, err, func() error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "removed operator", args[0])
				return err
			})
		},
	})
	return cmd
}

// readPassword reads a new password: on a terminal asked twice without echo, else the first line of in.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprint(prompt, "\nAgain: ")
		if err == nil {
			var again []byte
			again, err = term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			if err == nil && string(again) != string(first) {
				return "", errors.New("the passwords differ")
			}
		}
		return string(first), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return "", errors.New("no password on standard input: pipe it in (printf '%s\\n' \"$PASSWORD\" | flashotp operators add ...)")
	}
	return password, nil
}
