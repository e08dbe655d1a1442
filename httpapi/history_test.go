package httpapi_test

import "testing"

// A time given is a time: one the API cannot represent (before 1970, where IDs' timestamps begin) is
// refused rather than read as "not given" (since=0001-01-01 would list everything, until=0001-01-01
// everything up to now).
func TestQueryTimes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path   string
		status int
	}{
		{"/otp/list?since=0001-01-01", 400},
		{"/otp/list?until=0001-01-01", 400},
		{"/otp/list?until=0001-01-01T00:00:00Z", 400},
		{"/otp/list?since=1969-12-31T23:59:59Z", 400},
		{"/otp/logs?since=0001-01-01", 400},
		{"/otp/reports?until=0001-01-01", 400},
		{"/otp/reports?since=0001-01-01&until=2025-01-01", 400},
		{"/otp/list?since=1970-01-01", 200},
		{"/otp/list?since=2025-03-14&until=2025-03-15T00:00:00Z", 200},
		{"/otp/reports?since=1970-01-01&until=2025-01-01", 200},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := e.do(t, "GET", tt.path, "", demo)
			if tt.status != 200 {
				wantError(t, res, tt.status, "invalid_request")
				return
			}
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
		})
	}
}
