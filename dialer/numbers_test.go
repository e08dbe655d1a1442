package dialer

import "testing"

func TestFormatNumbers(t *testing.T) {
	tests := []struct {
		to, cli, format string
		wantTo, wantCLI string
	}{
		{"+442079460123", "+442079461234", "e164", "+442079460123", "+442079461234"},
		{"+442079460123", "+442079461234", "e164_no_plus", "442079460123", "442079461234"},
		// National: the recipient as its country dials it; the CLI too when it is of that country.
		{"+442079460123", "+442079461234", "national", "02079460123", "02079461234"},
		{"+33612345678", "+33198765432", "national", "0612345678", "0198765432"},
		{"+14155552671", "+442079461234", "national", "4155552671", "+442079461234"},
	}
	for _, tc := range tests {
		to, cli, err := formatNumbers(tc.to, tc.cli, tc.format)
		if err != nil || to != tc.wantTo || cli != tc.wantCLI {
			t.Errorf("%s %s %s: got %q %q %v, want %q %q", tc.format, tc.to, tc.cli, to, cli, err, tc.wantTo, tc.wantCLI)
		}
		// The code is the CLI's last digits: no format may change them.
		if cli[len(cli)-4:] != tc.cli[len(tc.cli)-4:] {
			t.Errorf("%s: code digits changed: %s → %s", tc.format, tc.cli, cli)
		}
	}
	if _, _, err := formatNumbers("+442079460123", "+442079461234", "local"); err == nil {
		t.Error("unknown format accepted")
	}
}
