package main

import (
	"strings"
	"testing"

	"flashotp/configs"
	"flashotp/internal/peers"
)

// onPostgres points cfg's store at the database dsn, with the server key every engine of it shares.
func onPostgres(cfg configs.Config, dsn string) configs.Config {
	cfg.Store = configs.Store{Driver: configs.StorePostgres, DSN: dsn, SecretKey: strings.Repeat("5e", 16)}
	return cfg
}

// Two engines on one PostgreSQL database: a send on the first, its flash call from the first's trunk; the
// wrong code and then the right one verified on the second, which has never seen the verification, and the
// status (one wrong attempt) answered alike by both.
func TestPostgresAnyEngineAnswers(t *testing.T) {
	pg := peers.StartPostgres(t)
	dsn := pg.CreateDB(t, "flashotp")
	a, phone := startPhoneMain(t, onPostgres(phoneConfig(t), dsn))
	b := client{t, "http://" + startMain(t, onPostgres(testConfig(t, "127.0.0.1:9"), dsn)).HTTPAddr}

	sent := a.do("POST", "/otp/send", `{"appid":"demo","recipient":"+14155552671","channel":"flashcall"}`)
	if sent.status != 202 {
		t.Fatalf("send: %d %s", sent.status, sent.raw)
	}
	id := sent.body["verification_id"].(string)
	cli := a.lastCLI(phone, id, "+14155552671")
	code := cli[len(cli)-4:]
	wrong := "0000"
	if code == wrong {
		wrong = "1111"
	}
	if v := b.verify(id, wrong); v.status != 422 {
		t.Errorf("a wrong code on the other engine: %d %s", v.status, v.raw)
	}
	if v := b.verify(id, code); v.status != 200 || v.body["status"] != "approved" {
		t.Fatalf("the right code on the other engine: %d %s", v.status, v.raw)
	}
	for name, c := range map[string]client{"first": a, "second": b} {
		s := c.do("GET", "/otp/status?verification_id="+id, "")
		if s.status != 200 || s.body["status"] != "approved" || s.body["attempts"] != float64(1) {
			t.Errorf("status on the %s engine: %d %s", name, s.status, s.raw)
		}
	}
}
