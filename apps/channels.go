package apps

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"flashotp/numberpool"
	"flashotp/templates"
)

// The channels of SPEC section 8, as `channel` in a send and an app's `channels` and `workflow` name them.
const (
	ChannelFlashCall = "flashcall" // a missed call whose caller ID ends with the code
	ChannelVoice     = "voice"     // a call that speaks the code
	ChannelSMS       = "sms"       // a text message
	ChannelWhatsApp  = "whatsapp"  // a WhatsApp authentication template
	ChannelEmail     = "email"     // an email
	ChannelInbound   = "inbound"   // the user calls the engine's number (dial_number); the caller ID is the proof
	// ChannelAuto is not a channel but a send's request to run the app's workflow.
	ChannelAuto = "auto"
)

// Channels are the channels this build delivers over, in SPEC section 8's order; an app's channels are
// some of them. whatsapp and email need their sender configured (config sections whatsapp, email); inbound
// needs the app's inbound_pool and a trunk with inbound on.
var Channels = []string{ChannelFlashCall, ChannelVoice, ChannelSMS, ChannelWhatsApp, ChannelEmail, ChannelInbound}

// CheckChannel returns what is wrong with ch as a channel an app may use, or "".
func CheckChannel(ch string) string {
	switch {
	case slices.Contains(Channels, ch):
		return ""
	case ch == ChannelAuto:
		return "auto runs the app's workflow: list the workflow's channels instead"
	}
	return fmt.Sprintf("unknown channel %q (want %s)", ch, strings.Join(Channels, ", "))
}

// Step is one step of an app's workflow: deliver over Channel, then wait up to Timeout for the code before
// the next step. The last step's Timeout may be 0: it waits until the verification expires.
type Step struct {
	Channel string   `json:"channel" mapstructure:"channel"`
	Timeout Duration `json:"timeout,omitempty" mapstructure:"timeout"`
}

// Workflow and step limits.
const (
	MaxWorkflowSteps = 5
	MinStepTimeout   = time.Second
	MaxStepTimeout   = time.Hour
)

// Code lengths of the channels whose codes are random digits (voice, sms: code_lengths), and their default.
const (
	MinRandomCodeLength     = 4
	MaxRandomCodeLength     = 10
	DefaultRandomCodeLength = 6
)

// randomCodeChannels are the channels of this build whose codes are random digits, with a code_lengths
// entry each.
var randomCodeChannels = []string{ChannelVoice, ChannelSMS, ChannelWhatsApp, ChannelEmail}

// DefaultLocale is the locale of an app that sets none.
const DefaultLocale = templates.DefaultLocale

// Allows reports whether a (defaults filled) may send over channel: one of its channels, or auto when it
// has a workflow.
func (a App) Allows(channel string) bool {
	if channel == ChannelAuto {
		return len(a.Workflow) > 0
	}
	return slices.Contains(a.Channels, channel)
}

// CodeLengthFor returns the digits of a's codes on channel: code_length for flash calls (the caller ID's
// last digits), code_lengths[channel] for the others, DefaultRandomCodeLength where a sets none.
func (a App) CodeLengthFor(channel string) int {
	if channel == ChannelFlashCall {
		return a.CodeLength
	}
	if n := a.CodeLengths[channel]; n != 0 {
		return n
	}
	return DefaultRandomCodeLength
}

// channelDefaults fills the channel settings a lacks: channels [flashcall], no workflow, locale en,
// code_lengths 6 for each random-code channel, no templates. a's maps may be shared with the stored app: new
// ones are made.
func (a App) channelDefaults() App {
	if a.Channels == nil {
		a.Channels = []string{ChannelFlashCall}
	}
	if a.Workflow == nil {
		a.Workflow = []Step{}
	}
	if a.Locale == "" {
		a.Locale = DefaultLocale
	}
	lengths := make(map[string]int, len(randomCodeChannels))
	for _, ch := range randomCodeChannels {
		lengths[ch] = DefaultRandomCodeLength
	}
	maps.Copy(lengths, a.CodeLengths)
	a.CodeLengths = lengths
	// A channel whose templates are all gone (a PATCH's "sms": null) is no channel of Templates.
	t := make(map[string]map[string]string, len(a.Templates))
	for ch, byLocale := range a.Templates {
		if len(byLocale) > 0 {
			t[ch] = byLocale
		}
	}
	a.Templates = t
	return a
}

// checkChannels reports the bad channel settings of a (defaults filled) with bad, each naming its key
// ("templates.sms.fr"). A template's error names the app, its channel and its locale.
func (a App) checkChannels(bad func(key, format string, args ...any)) {
	if len(a.Channels) == 0 {
		bad("channels", "an app needs at least one channel (want some of %s)", strings.Join(Channels, ", "))
	}
	for i, ch := range a.Channels {
		if msg := CheckChannel(ch); msg != "" {
			bad(fmt.Sprintf("channels[%d]", i), "%s", msg)
		} else if slices.Index(a.Channels, ch) < i {
			bad(fmt.Sprintf("channels[%d]", i), "%q is listed twice", ch)
		}
	}

	if len(a.Workflow) > MaxWorkflowSteps {
		bad("workflow", "want at most %d steps, got %d", MaxWorkflowSteps, len(a.Workflow))
	}
	for i, s := range a.Workflow {
		key := fmt.Sprintf("workflow[%d]", i)
		if msg := CheckChannel(s.Channel); msg != "" {
			bad(key+".channel", "%s", msg)
		} else if s.Channel == ChannelInbound {
			bad(key+".channel", "inbound is no workflow step: the user needs the number to call when the send answers (send with channel inbound)")
		} else if !slices.Contains(a.Channels, s.Channel) {
			bad(key+".channel", "%q is not one of the app's channels (%s)", s.Channel, strings.Join(a.Channels, ", "))
		}
		last := i == len(a.Workflow)-1
		switch d := time.Duration(s.Timeout); {
		case d == 0 && !last:
			bad(key+".timeout", "required on every step but the last: how long to wait for the code before the next step (%s to %s)", MinStepTimeout, hours(MaxStepTimeout))
		case d != 0 && (d < MinStepTimeout || d > MaxStepTimeout):
			bad(key+".timeout", "want %s to %s, got %s", MinStepTimeout, hours(MaxStepTimeout), d)
		}
	}

	switch inbound := slices.Contains(a.Channels, ChannelInbound); {
	case inbound && a.InboundPool == "":
		bad("inbound_pool", "channel inbound needs the pool of numbers the users call")
	case a.InboundPool != "" && !numberpool.ValidName(a.InboundPool):
		bad("inbound_pool", "want a pool's name, got %q", a.InboundPool)
	}
	switch a.InboundAttestation {
	case "", "A", "B", "C":
	default:
		bad("inbound_attestation", "want A, B, C or nothing, got %q", a.InboundAttestation)
	}

	if err := templates.CheckLocale(a.Locale); err != nil {
		bad("locale", "%v", err)
	}
	if a.AndroidAppHash != "" && !templates.ValidAndroidHash(a.AndroidAppHash) {
		bad("android_app_hash", "want the 11 characters (A-Z, a-z, 0-9, + and /) of the app's SMS Retriever hash, got %q", a.AndroidAppHash)
	}

	for _, ch := range slices.Sorted(maps.Keys(a.CodeLengths)) {
		n := a.CodeLengths[ch]
		key := "code_lengths." + ch
		switch {
		case ch == ChannelFlashCall:
			bad(key, "a flash call's code is the caller ID's last digits: set code_length")
		case ch == ChannelInbound:
			bad(key, "an inbound call has no code: the caller ID is the proof")
		case CheckChannel(ch) != "":
			bad(key, "%s", CheckChannel(ch))
		case n < MinRandomCodeLength || n > MaxRandomCodeLength:
			bad(key, "want %d to %d, got %d", MinRandomCodeLength, MaxRandomCodeLength, n)
		}
	}

	for _, k := range slices.Sorted(maps.Keys(a.Templates)) {
		// An email's subject and HTML body have keys of their own (email_subject, email_html): the rules
		// of their channel apply to them.
		key, ch := "templates."+k, templates.ChannelOf(k)
		switch {
		case CheckChannel(ch) != "":
			bad(key, "%s", CheckChannel(ch))
			continue
		case !templates.HasTemplates(ch):
			bad(key, "channel %q has no text templates (only %s do)", ch, strings.Join(textChannels(), ", "))
			continue
		case !slices.Contains(Channels, ch):
			bad(key, "%s", CheckChannel(ch))
			continue
		}
		for _, l := range slices.Sorted(maps.Keys(a.Templates[k])) {
			if err := templates.Check(k, l, a.Templates[k][l]); err != nil {
				bad(key+"."+l, "app %q, channel %s, locale %s: %v", a.ID, k, l, err)
			}
		}
	}
}

// textChannels are the channels of this build that have text templates.
func textChannels() []string {
	return slices.DeleteFunc(slices.Clone(Channels), func(ch string) bool { return !templates.HasTemplates(ch) })
}

// hours writes a whole number of hours as "1h" (time.Duration writes "1h0m0s").
func hours(d time.Duration) string { return strings.TrimSuffix(d.String(), "0m0s") }
