package main

import (
	"context"
	"os"
	"sync"
	"time"

	"flashotp/apps"
	"flashotp/dialer"
	"flashotp/httpapi"
	"flashotp/sip"
	"flashotp/webhook"
)

// consoleData wires the console's data routes to the engine's parts: the live sampler, the otp service,
// the dialer's trunks and the webhook queue's last tries.
func (m *Main) consoleData(webhooks *webhook.Queue, started time.Time) httpapi.ConsoleData {
	node, _ := os.Hostname()
	channels := []string{apps.ChannelFlashCall, apps.ChannelVoice, apps.ChannelSMS}
	if m.Config.WhatsApp.Configured() {
		channels = append(channels, apps.ChannelWhatsApp)
	}
	if m.Config.Email.Configured() {
		channels = append(channels, apps.ChannelEmail)
	}
	return httpapi.ConsoleData{
		Live: m.sampler, Sends: m.metrics, Verifications: m.svc, Trunks: consoleTrunks{m.dialer, &m.regs}, Webhooks: consoleWebhooks{webhooks},
		Version: version, Node: node, Started: started, Channels: channels,
	}
}

// consoleTrunks is the dialer, with the registrations, as the console's Trunks page reads it.
type consoleTrunks struct {
	d    *dialer.Dialer
	regs *registrations
}

// registrations are the trunks' registration states (register: true), as KeepRegistered reports them.
type registrations struct{ m sync.Map } // trunk name → sip.RegState

func (r *registrations) set(trunk string, s sip.RegState) { r.m.Store(trunk, s) }

// of returns trunk's registration for the console, nil for a trunk that does not register.
func (r *registrations) of(trunk string) *httpapi.TrunkRegistration {
	v, ok := r.m.Load(trunk)
	if !ok {
		return nil
	}
	s := v.(sip.RegState)
	out := &httpapi.TrunkRegistration{Registered: s.Registered}
	if s.Registered {
		until := s.Until.UTC()
		out.Until = &until
	}
	if s.Err != nil {
		out.Error = s.Err.Error()
	}
	return out
}

var _ httpapi.Trunks = consoleTrunks{}

func (t consoleTrunks) Trunks() []httpapi.TrunkStatus {
	var out []httpapi.TrunkStatus
	for _, s := range t.d.Trunks() {
		ts := httpapi.TrunkStatus{
			Name: s.Name, Address: s.Address, Transport: s.Transport, Up: s.Up, InFlight: s.InFlight, MaxCalls: s.MaxCalls,
			CPS: s.CPS, MaxCPS: s.MaxCPS, Calls: httpapi.TrunkCalls{Missed: s.Missed, Answered: s.Answered, Failed: s.Failed},
			Failovers: s.Failovers, LastProbeStatus: s.LastProbe.Status, LastProbeError: s.LastProbe.Err,
			Registration: t.regs.of(s.Name),
		}
		if p := s.LastProbe; !p.At.IsZero() {
			at := p.At
			ts.LastProbeAt = &at
			if p.Err == "" {
				rtt := ms(p.RTT)
				ts.OptionsRTTMS = &rtt
			}
		}
		out = append(out, ts)
	}
	return out
}

func (t consoleTrunks) Probe(ctx context.Context, name string) (httpapi.TrunkProbe, error) {
	p, err := t.d.Probe(ctx, name)
	if err != nil {
		return httpapi.TrunkProbe{}, err
	}
	return httpapi.TrunkProbe{Up: p.Up, RTTMS: ms(p.RTT), Status: p.Status, Error: p.Err}, nil
}

// ms is d in milliseconds, to the tenth.
func ms(d time.Duration) float64 { return float64(d.Microseconds()/100) / 10 }

// consoleWebhooks is the webhook queue's last tries as the console reads them.
type consoleWebhooks struct{ q *webhook.Queue }

var _ httpapi.WebhookTries = consoleWebhooks{}

func (w consoleWebhooks) Tries(appID, verificationID string, limit int) []httpapi.WebhookTry {
	var out []httpapi.WebhookTry
	for _, t := range w.q.Tries(appID, verificationID, limit) {
		out = append(out, httpapi.WebhookTry(t))
	}
	return out
}
