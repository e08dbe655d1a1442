package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"flashotp/metrics"
	"flashotp/numberpool"
)

// noPools is a PoolAdmin that manages nothing: the route table is all this test needs.
type noPools struct{}

var _ PoolAdmin = noPools{}

func (noPools) Pools() ([]numberpool.Report, []numberpool.AppSpace) { return nil, nil }
func (noPools) PutPool(_ context.Context, p numberpool.Pool) (numberpool.Pool, error) {
	return p, nil
}
func (noPools) Pool(string) (numberpool.Pool, bool) { return numberpool.Pool{}, false }
func (noPools) CreatePool(_ context.Context, p numberpool.Pool) (numberpool.Pool, error) {
	return p, nil
}
func (noPools) DeletePool(context.Context, string) error { return nil }
func (noPools) AddEntry(_ context.Context, _ string, e numberpool.Entry) (numberpool.Entry, error) {
	return e, nil
}
func (noPools) RemoveEntry(context.Context, string, string) error { return nil }
func (noPools) QuarantineNow(context.Context, numberpool.Target) (numberpool.Quarantine, error) {
	return numberpool.Quarantine{}, nil
}
func (noPools) Release(context.Context, numberpool.Target) error { return nil }

// fiberParam is a path parameter as fiber writes it (:name); OpenAPI writes {name}.
var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// The OpenAPI document and the routes the server registers, admin API included, are the same set.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue // shared by the path's operations, not an operation
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	backup := func() (Snapshot, error) { return nil, errors.New("no store here") }
	files := fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}
	s := New(Config{MaxBodyBytes: 1024, AdminToken: "t0k", Metrics: metrics.New(), Pools: noPools{}, Backup: backup, Console: ConsoleConfig{Files: files}}, nil, nil)
	for _, r := range s.app.GetRoutes(true) {
		switch {
		case r.Method == "HEAD" || r.Path == "/" || r.Path == "/otp" || r.Path == "/admin" || r.Path == "/console/api" || r.Path == "/console/api/admin" || r.Path == "/console":
			continue // fiber's implicit HEAD for GET, the catch-all 404, the auth groups and the console's files
		}
		// fiber's :name and * are OpenAPI's {name} (the pprof wildcard is documented as {profile}).
		path := strings.Replace(fiberParam.ReplaceAllString(r.Path, "{$1}"), "/*", "/{profile}", 1)
		served = append(served, r.Method+" "+path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}
