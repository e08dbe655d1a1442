// Package metrics holds flashotp's Prometheus collectors, on a registry of the engine's own (so that several
// engines can live in one process, as the tests run them). Names have the flashotp_ prefix; labels take
// only bounded values (trunk and pool names, outcomes, reasons): never a phone number.
//
// A nil *Metrics records nothing, so the parts work without one.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
}

// New returns collectors registered on a new registry, with Go runtime and process collectors beside them.
// queueDepth, if not nil, is read at each scrape.
func New(queueDepth func() float64) *Metrics {
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
	}
	reg.MustRegister(m.callsStarted, m.callsEnded, m.callsInFlight, m.postDialDelay, m.ringToCancel, m.send, m.verify, m.picks, m.webhooks)
	if queueDepth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flashotp_dialer_queue_depth", Help: "Calls accepted and waiting for a trunk.",
		}, queueDepth))
	}
	return m
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
