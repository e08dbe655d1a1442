package dialer

import (
	"fmt"
	"net"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"flashotp/call"
)

// Number formats a trunk may want (Trunk.NumberFormat).
const (
	NumberE164       = "e164"         // +14155552671
	NumberE164NoPlus = "e164_no_plus" // 14155552671
	NumberNational   = "national"     // as the recipient's country dials it
)

// call builds the SIP call for request r on trunk t: numbers in the trunk's format, its routing and
// credentials.
func (t *trunk) call(r Request, cfg Config) (call.Request, error) {
	to, cli, err := formatNumbers(r.To, r.CLI, t.NumberFormat)
	if err != nil {
		return call.Request{}, err
	}
	c := call.Request{
		Target: t.Address, Transport: t.Transport, Domain: t.Domain,
		To: t.TechPrefix + to, CLI: cli,
		UserPhone: t.UserPhone, CLIHeaders: t.CLIHeaders, Privacy: t.Privacy,
		Username: t.Username, AuthUsername: t.AuthUsername, Password: t.Password, Realm: t.Realm,
		RingTime: cfg.RingTime, DialTimeout: cfg.DialTimeout, CancelGuard: cfg.CancelGuard,
		Kind: r.Kind, Prompt: r.Prompt, AnswerTimeout: r.AnswerTimeout, Repeat: r.Repeat, Text: r.Text,
	}
	if t.OutboundProxy != "" {
		c.Target, c.Proxy = t.OutboundProxy, t.OutboundProxy
		if c.Domain == "" {
			c.Domain, _, _ = net.SplitHostPort(t.Address)
		}
	}
	return c, nil
}

// formatNumbers writes the recipient and the CLI (both E.164 with '+') the way a trunk wants them:
// "e164" keeps the '+', "e164_no_plus" drops it, "national" dials the recipient as its country does
// (national prefix, no country code) and writes the CLI nationally too when it is of the same country,
// else in E.164. The code digits, the CLI's last ones, never change.
func formatNumbers(to, cli, format string) (string, string, error) {
	switch format {
	case "", NumberE164:
		return to, cli, nil
	case NumberE164NoPlus:
		return strings.TrimPrefix(to, "+"), strings.TrimPrefix(cli, "+"), nil
	case NumberNational:
		toNum, err := phonenumbers.Parse(to, "")
		if err != nil {
			return "", "", fmt.Errorf("recipient: %w", err) // no number in logs
		}
		national := digits(phonenumbers.Format(toNum, phonenumbers.NATIONAL))
		if cliNum, err := phonenumbers.Parse(cli, ""); err == nil && cliNum.GetCountryCode() == toNum.GetCountryCode() {
			cli = digits(phonenumbers.Format(cliNum, phonenumbers.NATIONAL))
		}
		return national, cli, nil
	}
	return "", "", fmt.Errorf("unknown number format %q", format)
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
