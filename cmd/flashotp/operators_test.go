package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// An operator added with the CLI signs in to the console of the running engine, with the password piped
// in; once removed, it no longer can.
func TestBinaryOperatorsCLI(t *testing.T) {
	const token = "t0k-operators"
	cfg := testConfig(t, "127.0.0.1:9") // nothing is sent
	cfg.HTTP.AdminToken = token
	base := "http://" + startMain(t, cfg).HTTPAddr
	env := []string{"FLASHOTP_HTTP_ADMIN_TOKEN=" + token, "FLASHOTP_ADMIN_URL=" + base}
	operators := func(stdin string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(binary(t), append([]string{"operators"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	signIn := func(password string) int {
		t.Helper()
		res, err := http.Post(base+"/console/api/session", "application/json", strings.NewReader(`{"username":"vera","password":"`+password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	if code, out := operators("", "add", "vera"); code == 0 || !strings.Contains(out, "no password on standard input") {
		t.Errorf("add without a password: exit %d %s", code, out)
	}
	if code, out := operators("short\n", "add", "vera"); code == 0 || !strings.Contains(out, "password: want 12 to 72 bytes") {
		t.Errorf("add with a short password: exit %d %s", code, out)
	}
	if code, out := operators("correct horse battery\n", "add", "vera", "--role", "viewer"); code != 0 || !strings.Contains(out, "added operator vera (viewer)") {
		t.Fatalf("add: exit %d %s", code, out)
	}
	if code, out := operators("", "list"); code != 0 || !strings.Contains(out, "vera") || !strings.Contains(out, "viewer") {
		t.Errorf("list: exit %d %s", code, out)
	}
	if status := signIn("correct horse battery"); status != http.StatusOK {
		t.Errorf("sign in as vera: %d", status)
	}
	if status := signIn("correct horse batter"); status != http.StatusUnauthorized {
		t.Errorf("sign in with a wrong password: %d", status)
	}
	if code, out := operators("", "remove", "vera"); code != 0 {
		t.Fatalf("remove: exit %d %s", code, out)
	}
	if status := signIn("correct horse battery"); status != http.StatusUnauthorized {
		t.Errorf("sign in as a removed operator: %d", status)
	}
}
