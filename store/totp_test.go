package store_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/internal/apptest"
	"flashotp/internal/storetest"
	"flashotp/store"
	"flashotp/totp"
)

func openTOTP(t testing.TB, db *store.DB, now func() time.Time) *totp.Service {
	t.Helper()
	reg := apptest.Open(t, db, apps.Defaults{}, nil, apptest.App("demo", "fk_demo", "s3cret-demo-secret"))
	svc, err := totp.New(totp.Config{Settings: totp.DefaultSettings, Store: db, Apps: reg, Key: db.Key(), Now: now,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// A copy of the database file does not hold an authenticator's secret, in any form; the store keeps the
// enrollment across a reopen, and refuses a second enrollment without replace.
func TestTOTPSecretSealedOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flashotp.db")
	db := mustOpenAt(t, path, "")
	svc := openTOTP(t, db, nil)
	e, err := svc.Enroll(t.Context(), totp.EnrollRequest{AppID: "demo", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Enroll(t.Context(), totp.EnrollRequest{AppID: "demo", User: "alice"}); fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("second enrollment: %v, want conflict", err)
	}
	if n, err := db.Count(store.TOTPBuckets...); err != nil || n != 1 {
		t.Fatalf("%d enrollments stored, %v; want 1", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	for name, form := range map[string][]byte{"raw": raw, "base32": []byte(e.Secret), "first half": raw[:10], "second half": raw[10:]} {
		if bytes.Contains(file, form) {
			t.Errorf("the database file holds the secret (%s)", name)
		}
	}
	if !bytes.Contains(file, []byte("demo\x00alice")) {
		t.Fatal("the enrollment is not in the file at all: the check above proves nothing")
	}
	db = mustOpenAt(t, path, "")
	svc = openTOTP(t, db, nil)
	code, _ := hotp.GenerateCodeCustom(e.Secret, uint64(time.Now().Unix()/30), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if _, err := svc.Verify(t.Context(), totp.VerifyRequest{AppID: "demo", User: "alice", Code: code}); err != nil {
		t.Fatalf("verify after reopen: %v", err)
	}
	if err := db.DeleteEnrollment(t.Context(), "demo", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteEnrollment(t.Context(), "demo", "alice"); !errors.Is(err, totp.ErrNotEnrolled) {
		t.Fatalf("deleting again: %v", err)
	}
}

// BenchmarkTOTPVerify measures verifies on the bbolt store: accepted HOTP codes (each moves the counter: one
// durable write, group-committed with the other goroutines') and wrong TOTP codes (nothing written).
//
//	go test -run '^$' -bench TOTPVerify -benchtime 5000x -count 3 ./store/
func BenchmarkTOTPVerify(b *testing.B) {
	db := storetest.Open(b)
	svc := openTOTP(b, db, nil)
	b.Run("accepted", func(b *testing.B) {
		var users atomic.Int64
		b.SetParallelism(8) // 8 users per CPU verifying at once: their writes share group commits
		b.RunParallel(func(pb *testing.PB) {
			user := "hotp" + strconv.FormatInt(users.Add(1), 10)
			e, err := svc.Enroll(b.Context(), totp.EnrollRequest{AppID: "demo", User: user, Type: "hotp", Replace: true})
			if err != nil {
				b.Error(err)
				return
			}
			for n := uint64(0); pb.Next(); n++ {
				code, _ := hotp.GenerateCode(e.Secret, n)
				if _, err := svc.Verify(b.Context(), totp.VerifyRequest{AppID: "demo", User: user, Code: code}); err != nil {
					b.Errorf("code %d: %v", n, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
	b.Run("wrong", func(b *testing.B) {
		if _, err := svc.Enroll(b.Context(), totp.EnrollRequest{AppID: "demo", User: "totp", Replace: true}); err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := svc.Verify(b.Context(), totp.VerifyRequest{AppID: "demo", User: "totp", Code: "000000"}); fault.CodeOf(err) != fault.InvalidCode && err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
}
