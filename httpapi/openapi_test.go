package httpapi

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI document and the routes the server registers are the same set.
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
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	s := New(Config{MaxBodyBytes: 1024}, nil, nil)
	for _, r := range s.app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Path == "/" || r.Path == "/otp" {
			continue // fiber's implicit HEAD for GET, the catch-all 404 and the auth group
		}
		served = append(served, r.Method+" "+r.Path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}
