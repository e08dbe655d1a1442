package call

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		code int
		want Reason
	}{
		{0, ReasonTrunkError},
		{300, ReasonClientError}, {302, ReasonClientError},
		{400, ReasonClientError},
		{401, ReasonAuthFailed}, {407, ReasonAuthFailed},
		{403, ReasonRejected}, {603, ReasonRejected},
		{404, ReasonNotFound}, {410, ReasonNotFound}, {484, ReasonNotFound},
		{408, ReasonUnavailable}, {480, ReasonUnavailable},
		{486, ReasonBusy}, {600, ReasonBusy},
		{487, ReasonClientError}, {488, ReasonClientError}, {499, ReasonClientError},
		{500, ReasonTrunkError}, {503, ReasonTrunkError}, {599, ReasonTrunkError},
		{604, ReasonTrunkError}, {606, ReasonTrunkError},
	}
	for _, tc := range tests {
		if got := Classify(tc.code); got != tc.want {
			t.Errorf("Classify(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}
