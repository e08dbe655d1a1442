// Package metrics holds flashotp's Prometheus collectors, on a registry of the engine's own (so that several
// engines can live in one process, as the tests run them). Names have the flashotp_ prefix; labels take
// only bounded values (trunk and pool names, outcomes, reasons): never a phone number.
//
// A nil *Metrics records nothing, so the parts work without one.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the engine's collectors.
type Metrics struct {
	reg *prometheus.Registry

	callsStarted  *prometheus.CounterVec
	callsEnded    *prometheus.CounterVec
	callsInFlight prometheus.Gauge
	postDialDelay *prometheus.HistogramVec
	ringToCancel  prometheus.Histogram
	send          prometheus.Histogram
	verify        *prometheus.HistogramVec
	picks         *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	requests      *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	ended         *prometheus.CounterVec
	steps         *prometheus.CounterVec
	sipMalformed  prometheus.Counter
	sipDropped    *prometheus.CounterVec
	inboundCalls  *prometheus.CounterVec
	registered    *prometheus.GaugeVec

	sends pulse // NextSend
}

// New returns collectors registered on a new registry, with Go runtime and process collectors beside them.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	latency := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		reg: reg,
		callsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_calls_started_total", Help: "Flash calls whose INVITE went out, by trunk.",
		}, []string{"trunk"}),
		callsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_calls_ended_total", Help: "Flash calls ended, by trunk, outcome (missed, answered, failed) and reason.",
		}, []string{"trunk", "outcome", "reason"}),
		callsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashotp_calls_in_flight", Help: "Flash calls placed and not yet ended.",
		}),
		postDialDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flashotp_post_dial_delay_seconds", Help: "Time from INVITE to the first 180/183, by trunk.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 3, 5, 8, 13, 21, 30},
		}, []string{"trunk"}),
		ringToCancel: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flashotp_ring_to_cancel_seconds", Help: "Time from the first 180/183 to the CANCEL, ring_time included.",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .05, .1, .5, 1, 5},
		}),
		send: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flashotp_send_duration_seconds", Help: "Time to accept a send (POST /otp/send handled).", Buckets: latency,
		}),
		verify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flashotp_verify_duration_seconds", Help: "Time to answer a verify, by result.", Buckets: latency,
		}, []string{"result"}),
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_pool_picks_total", Help: "Caller IDs drawn, by pool.",
		}, []string{"pool"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_webhook_tries_total", Help: "Webhook delivery tries, by outcome (delivered, retry, dropped).",
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_http_requests_total", Help: "HTTP requests answered, by route pattern (other: no route) and status code.",
		}, []string{"route", "status"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_auth_failures_total", Help: "Refused credentials, by reason (missing, malformed, unknown_key, wrong_secret, expired, missing_claim, throttled, …).",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_rate_limited_total", Help: "Requests refused with 429, by rate-limit scope.",
		}, []string{"scope"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_verifications_ended_total", Help: "Verifications that reached a final status (approved, expired, failed, canceled).",
		}, []string{"status"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_steps_ended_total", Help: "Verification steps that reached an outcome, by channel and state (sent: handed over; delivered; failed). A message's step counts again when a receipt moves it from sent to delivered or failed.",
		}, []string{"channel", "state"}),
		sipMalformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashotp_sip_malformed_total", Help: "SIP messages received that could not be parsed (UDP datagrams and TCP messages); their log lines are rate-limited.",
		}),
		sipDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_sip_dropped_total", Help: "SIP messages dropped unanswered, by reason (stranger: from an address that is no trunk's; dialogs: a 2xx past the dialogs a call hangs up).",
		}, []string{"reason"}),
		inboundCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashotp_inbound_calls_total", Help: "Calls from inbound trunks to the apps' inbound numbers, all rejected unanswered, by trunk and result (matched: approved a verification; withheld: no caller ID; no_match: no pending verification of the caller for the number called; identity_refused: its STIR/SHAKEN PASSporT did not verify or its attestation is too low; error: the store failed).",
		}, []string{"trunk", "result"}),
		registered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flashotp_trunk_registered", Help: "1 while the engine's contact is registered with the trunk (trunks with register: true), else 0.",
		}, []string{"trunk"}),
	}
	for _, reason := range []string{"stranger", "dialogs"} { // sip.DropStranger, sip.DropDialogs: shown at 0
		m.sipDropped.WithLabelValues(reason)
	}
	reg.MustRegister(m.sipMalformed, m.callsStarted, m.callsEnded, m.callsInFlight, m.postDialDelay, m.ringToCancel, m.send, m.verify, m.picks, m.webhooks,
		m.requests, m.authFailures, m.rateLimited, m.ended, m.steps, m.sipDropped, m.inboundCalls, m.registered)
	return m
}

// Gather returns the current values of every collector, as /metrics would serve them (the console's live
// sampler reads them so).
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) {
	if m == nil {
		return nil, nil
	}
	return m.reg.Gather()
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// CallStarted counts a call whose INVITE went out on trunk.
func (m *Metrics) CallStarted(trunk string) {
	if m == nil {
		return
	}
	m.callsStarted.WithLabelValues(trunk).Inc()
	m.callsInFlight.Inc()
}

// CallEnded counts a call's outcome; started says whether CallStarted counted it.
func (m *Metrics) CallEnded(trunk, outcome, reason string, started bool) {
	if m == nil {
		return
	}
	m.callsEnded.WithLabelValues(trunk, outcome, reason).Inc()
	if started {
		m.callsInFlight.Dec()
	}
}

// Ringing records a call's post-dial delay and, if it was cancelled, the time from ring to CANCEL.
func (m *Metrics) Ringing(trunk string, postDialDelay, ringToCancel time.Duration) {
	if m == nil {
		return
	}
	m.postDialDelay.WithLabelValues(trunk).Observe(postDialDelay.Seconds())
	if ringToCancel >= 0 {
		m.ringToCancel.Observe(ringToCancel.Seconds())
	}
}

// Sent records how long a send took.
func (m *Metrics) Sent(d time.Duration) {
	if m != nil {
		m.send.Observe(d.Seconds())
		m.sends.fire()
	}
}

// Verified records a verify's result and how long it took.
func (m *Metrics) Verified(result string, d time.Duration) {
	if m != nil {
		m.verify.WithLabelValues(result).Observe(d.Seconds())
	}
}

// Picked counts a caller ID drawn from pool.
func (m *Metrics) Picked(pool string) {
	if m != nil {
		m.picks.WithLabelValues(pool).Inc()
	}
}

// Webhook counts a webhook delivery try by its outcome.
func (m *Metrics) Webhook(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome).Inc()
	}
}

// Watched is what the metrics read from the engine's parts at each scrape.
type Watched struct {
	// Trunks are the configured trunks, each 1 in flashotp_trunk_up unless TrunksDown names it.
	Trunks     []string
	TrunksDown func() []string
	// QueueLen is the number of calls accepted and waiting for a trunk; QueueCapacity is dialer.queue_size.
	QueueLen      func() int
	QueueCapacity int
	// StoreFailures counts the store's transactions that failed with store.ErrFailed.
	StoreFailures func() uint64
	// StoreCommits counts the store's group-committed transactions and the writes they carried (nil: none).
	StoreCommits func() (commits, writes uint64)
	// StoreRoundTrips counts the round trips to a database server (nil: an embedded store).
	StoreRoundTrips func() uint64
}

// Watch registers the collectors read from w at each scrape. Call it once, once the parts exist.
func (m *Metrics) Watch(w Watched) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		&trunksUp{desc: prometheus.NewDesc("flashotp_trunk_up", "1 if the trunk is up, 0 if the dialer marked it down.", []string{"trunk"}, nil), w: w},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flashotp_dialer_queue_depth", Help: "Calls accepted and waiting for a trunk.",
		}, func() float64 { return float64(w.QueueLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flashotp_dialer_queue_capacity", Help: "Calls the dialer queue holds at most (dialer.queue_size).",
		}, func() float64 { return float64(w.QueueCapacity) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flashotp_store_errors_total", Help: "Store reads and writes that failed on the disk (full, read-only, failing).",
		}, func() float64 { return float64(w.StoreFailures()) }),
	)
	if w.StoreCommits != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "flashotp_store_commits_total", Help: "Transactions the store committed (each with its fdatasyncs); writes_total / commits_total is the group size.",
			}, func() float64 { c, _ := w.StoreCommits(); return float64(c) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "flashotp_store_writes_total", Help: "Writes (a send, an outcome, a verify, …) the store's committed transactions carried.",
			}, func() float64 { _, n := w.StoreCommits(); return float64(n) }),
		)
	}
	if w.StoreRoundTrips != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flashotp_store_round_trips_total", Help: "Round trips to the database server (store.driver postgres): each statement sent alone, each pipeline of them.",
		}, func() float64 { return float64(w.StoreRoundTrips()) }))
	}
}

// trunksUp is flashotp_trunk_up, read from the dialer's health at each scrape.
type trunksUp struct {
	desc *prometheus.Desc
	w    Watched
}

func (t *trunksUp) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

func (t *trunksUp) Collect(ch chan<- prometheus.Metric) {
	down := t.w.TrunksDown()
	for _, name := range t.w.Trunks {
		up := 1.0
		if slices.Contains(down, name) {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(t.desc, prometheus.GaugeValue, up, name)
	}
}

// HTTPRequest counts a request answered with status; route is its route pattern, or "other".
func (m *Metrics) HTTPRequest(route string, status int) {
	if m != nil {
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	}
}

// AuthFailed counts a refused credential by its reason.
func (m *Metrics) AuthFailed(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// RateLimited counts a request refused by the rate limit of scope.
func (m *Metrics) RateLimited(scope string) {
	if m != nil {
		m.rateLimited.WithLabelValues(scope).Inc()
	}
}

// VerificationEnded counts a verification that reached the final status.
func (m *Metrics) VerificationEnded(status string) {
	if m != nil {
		m.ended.WithLabelValues(status).Inc()
	}
}

// StepEnded counts a verification step that reached state (sent, delivered, failed) on channel.
func (m *Metrics) StepEnded(channel, state string) {
	if m != nil {
		m.steps.WithLabelValues(channel, state).Inc()
	}
}

// SIPMalformed counts a SIP message received that could not be parsed.
func (m *Metrics) SIPMalformed() {
	if m != nil {
		m.sipMalformed.Inc()
	}
}

// InboundCall counts a call from an inbound trunk, by its result (otp.InboundMatched, …).
func (m *Metrics) InboundCall(trunk, result string) {
	if m != nil {
		m.inboundCalls.WithLabelValues(trunk, result).Inc()
	}
}

// TrunkRegistered sets whether the engine is registered with trunk.
func (m *Metrics) TrunkRegistered(trunk string, registered bool) {
	if m != nil {
		v := 0.0
		if registered {
			v = 1
		}
		m.registered.WithLabelValues(trunk).Set(v)
	}
}

// SIPDropped counts a SIP message dropped unanswered, by reason (sip.DropStranger, sip.DropDialogs).
func (m *Metrics) SIPDropped(reason string) {
	if m != nil {
		m.sipDropped.WithLabelValues(reason).Inc()
	}
}
