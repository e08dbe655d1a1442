package setting_test

import (
	"errors"
	"testing"

	"flashotp/setting"
)

func TestErrors(t *testing.T) {
	var errs setting.Errors
	if errs.Err() != nil {
		t.Fatal("no errors joined into one")
	}
	errs.Add("ttl", "want %s, got %d", "1m..15m", 3)
	errs.Add("pools[1]", "bad")
	err := errs.Err()
	if got, want := err.Error(), "ttl: want 1m..15m, got 3\npools[1]: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	parts := setting.Split(err)
	var se *setting.Error
	if len(parts) != 2 || !errors.As(parts[1], &se) || se.Key != "pools[1]" || se.Msg != "bad" {
		t.Errorf("Split = %v, want the two *Errors, the second pools[1]", parts)
	}
	if setting.Split(nil) != nil {
		t.Error("Split(nil) is not empty")
	}
}
