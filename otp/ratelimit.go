package otp

import (
	"strings"
	"time"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
)

// allowSend checks and counts the send limits of app for recipient and for the channel of its first step
// (and refuses a recipient locked out by failed verifications).
func (s *Service) allowSend(app apps.App, to Recipient, channel string) error {
	recipient := to.key()
	if err := s.lockedOut(app, recipient); err != nil {
		return err
	}
	checks := []limits.Check{check(app, apps.ScopeRecipient, recipient), check(app, apps.ScopeApp, app.ID), check(app, channel, app.ID)}
	if to.E164 != "" { // a number range; an address has none
		checks = append(checks, check(app, apps.ScopePrefix, prefixOf(to.E164)))
	}
	denied, retry := s.limiter.Allow(checks...)
	if denied != nil {
		return rateLimited(*denied, retry)
	}
	return nil
}

// lockedOut refuses a recipient whose failed verifications filled the app's failed_verifications limit.
func (s *Service) lockedOut(app apps.App, recipient string) error {
	c := check(app, apps.ScopeFailedVerifications, recipient)
	if full, retry := s.limiter.Full(c); full {
		return rateLimited(c, retry)
	}
	return nil
}

// prefixOf is the number range a recipient belongs to for the prefix limit.
func prefixOf(recipient string) string { return recipient[:len(recipient)-apps.PrefixFreeDigits] }

// check is app's rule for scope applied to key. Limiter keys are per app: apps never share a count.
func check(app apps.App, scope, key string) limits.Check {
	l := app.RateLimits[scope]
	return limits.Check{Rule: limits.Rule{Scope: scope, Limit: l.Limit, Window: time.Duration(l.Window)}, Key: app.ID + "/" + key}
}

func rateLimited(c limits.Check, retry time.Duration) *fault.Error {
	e := fault.Errorf(fault.RateLimited, "%s limit reached: %d per %s", c.Scope, c.Limit, c.Window)
	e.RetryAfter, e.Scope = retry, c.Scope
	return e
}

// AllowRequest checks and counts a request of app's API key from the client address ip (the client
// scope).
func (s *Service) AllowRequest(appID, key, ip string) error {
	app, err := s.app(appID)
	if err != nil {
		return err
	}
	if denied, retry := s.limiter.Allow(check(app, apps.ScopeClient, key+"/"+ip)); denied != nil {
		return rateLimited(*denied, retry)
	}
	return nil
}

// RateLimits returns where each limit that applies to the app's client (API key and address) and, when
// given, to recipient stands, each key shown without the app's ID.
func (s *Service) RateLimits(appID, key, ip, recipient string) ([]limits.Status, error) {
	app, err := s.app(appID)
	if err != nil {
		return nil, err
	}
	checks := []limits.Check{check(app, apps.ScopeApp, app.ID), check(app, apps.ScopeClient, key+"/"+ip)}
	for _, ch := range apps.Channels { // the channels' own limits, where the app sets one
		if app.RateLimits[ch].Limit > 0 {
			checks = append(checks, check(app, ch, app.ID))
		}
	}
	if recipient != "" {
		key, err := recipientKey(recipient)
		if err != nil {
			return nil, err
		}
		checks = append(checks, check(app, apps.ScopeRecipient, key))
		if !strings.Contains(key, "@") {
			checks = append(checks, check(app, apps.ScopePrefix, prefixOf(key)))
		}
		checks = append(checks, check(app, apps.ScopeFailedVerifications, key))
	}
	out := make([]limits.Status, 0, len(checks))
	for _, c := range checks {
		st := s.limiter.Status(c)
		st.Key = strings.TrimPrefix(st.Key, app.ID+"/")
		out = append(out, st)
	}
	return out, nil
}

// allowStep reserves a place in app's limit of channel for a workflow's later step: the caller gives it
// back (Release) if the step does not start after all.
func (s *Service) allowStep(app apps.App, channel string) (limits.Reservation, error) {
	c := check(app, channel, app.ID)
	slot, ok, retry := s.limiter.Reserve(c)
	if !ok {
		return slot, rateLimited(c, retry)
	}
	return slot, nil
}
