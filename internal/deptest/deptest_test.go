// Package deptest keeps the house's imports pointing one way. Data flows as SPEC section 1 draws it, httpapi →
// otp → (numberpool, store, dialer → sip); the adapters that reach a library (store: bbolt, sip: sipgo) import
// the domain whose interfaces they implement, never the other way round (docs/architecture.md). It asks `go
// list` for every package's whole dependency set, as tailscale's tstest/deptest does, so an import that sneaks
// in through a third package is caught too.
package deptest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "flashotp"

// Adapters: the packages that know a library the domain must not see.
var (
	sipStack  = []string{module + "/sip", "github.com/emiago/sipgo"}
	bolt      = []string{module + "/store", "go.etcd.io/bbolt"}
	pg        = []string{module + "/store/postgres", "github.com/jackc/pgx/v5", "github.com/pressly/goose/v3"}
	http      = []string{module + "/httpapi", "github.com/gofiber/fiber/v2", "github.com/valyala/fasthttp"}
	wiring    = []string{module + "/cmd/flashotp", module + "/configs", "github.com/spf13/viper", "github.com/spf13/cobra"}
	mailer    = []string{module + "/email", "github.com/wneessen/go-mail"}
	smppAdap  = []string{module + "/smpp"}
	everyAdap = slices.Concat(sipStack, bolt, pg, http, wiring, mailer, smppAdap)
)

// forbidden lists, for a package, the packages it must not depend on, directly or not.
var forbidden = map[string][]string{
	// The vocabularies every layer shares import nothing of the project's.
	"call":    {module + "/"},
	"fault":   {module + "/"},
	"setting": {module + "/"},
	// templates is a leaf of the domain: apps checks with it, otp renders with it.
	"templates": {module + "/"},
	// message is the words otp and the senders (SMPP, HTTP gateways, WhatsApp, email) share.
	"message": {module + "/"},
	// seal keeps secrets sealed under the server key for apps and totp.
	"seal": {module + "/"},
	// The domain knows no adapter: storage, SIP and HTTP reach it through interfaces it declares.
	"otp":        everyAdap,
	"apps":       everyAdap,
	"numberpool": everyAdap,
	"webhook":    everyAdap,
	"limits":     everyAdap,
	"dialer":     everyAdap,
	"metrics":    everyAdap,
	"sms":        everyAdap,
	"voice":      everyAdap,
	"totp":       everyAdap,
	"console":    everyAdap,
	// The HTTP SMS gateway sends for otp without knowing it, and knows no other adapter.
	"smsgw": slices.Concat(everyAdap, []string{module + "/otp"}),
	// A sender knows message and the words it sends, never otp or an adapter.
	"whatsapp": slices.Concat(everyAdap, []string{module + "/otp"}),
	// The adapters know the domain, not each other, and nothing below otp knows the HTTP layer.
	"httpapi": slices.Concat(sipStack, bolt, wiring, []string{module + "/smsgw", module + "/whatsapp"}),
	"store":   slices.Concat(sipStack, http, wiring, pg),
	// The two backends know the domain they store, not each other.
	"store/postgres": slices.Concat(sipStack, http, wiring, []string{"go.etcd.io/bbolt", module + "/store"}),
	"sip":            slices.Concat(bolt, http, wiring, []string{module + "/otp", module + "/dialer"}),
	// email knows go-mail and the words it sends (message, templates), never otp.
	"email": slices.Concat(sipStack, bolt, http, wiring, []string{module + "/otp", module + "/apps", module + "/dialer"}),
	// A sender knows message, setting, templates and sms: never otp, nor another adapter.
	"smpp": slices.Concat(sipStack, bolt, http, wiring, []string{module + "/otp", module + "/dialer", module + "/numberpool"}),
}

type pkg struct {
	ImportPath string
	Deps       []string
}

func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p.Deps
	}
	for name, bad := range forbidden {
		deps, ok := pkgs[module+"/"+name]
		if !ok {
			t.Errorf("%s: no such package (rename the rule with the package)", name)
			continue
		}
		for _, d := range deps {
			for _, b := range bad {
				if matches(d, b) {
					t.Errorf("%s depends on %s", name, d)
				}
			}
		}
	}
	// Nothing imports the binary.
	for p, deps := range pkgs {
		if slices.Contains(deps, module+"/cmd/flashotp") {
			t.Errorf("%s depends on cmd/flashotp", p)
		}
	}
}

// matches reports whether dependency d is b or inside it; a b ending in "/" stands for everything under it.
func matches(d, b string) bool {
	if strings.HasSuffix(b, "/") {
		return strings.HasPrefix(d, b)
	}
	return d == b || strings.HasPrefix(d, b+"/")
}
