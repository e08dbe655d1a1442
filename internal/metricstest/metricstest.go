// Package metricstest reads metrics as Prometheus scrapes them, for tests: a series is named as the text
// format writes it, name{label="value",...} with the labels in alphabetical order.
package metricstest

import (
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"flashotp/metrics"
)

// Scrape returns m's metrics in the text format.
func Scrape(t testing.TB, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// Value returns series' value in scrape, and 0 when scrape lacks it (a counter not yet counted).
func Value(t testing.TB, scrape, series string) float64 {
	t.Helper()
	for line := range strings.Lines(scrape) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			t.Fatalf("%s: %v", series, err)
		}
		return v
	}
	return 0
}
