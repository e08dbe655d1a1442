package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestDistServesItself checks the committed build: index.html is there, every script and style it names is
// in Dist under /console/, and nothing in it loads from another host (no CDN, no outside fonts).
func TestDistServesItself(t *testing.T) {
	index, err := fs.ReadFile(Dist, "dist/index.html")
	if err != nil {
		t.Fatalf("web/dist/index.html: %v (run make ui)", err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(index), -1)
	assets := 0
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, "/console/") {
			t.Errorf("index.html loads %q: not under /console/", ref)
			continue
		}
		if _, err := fs.Stat(Dist, "dist/"+strings.TrimPrefix(ref, "/console/")); err != nil {
			t.Errorf("index.html names %q, not in dist: %v", ref, err)
		}
		assets++
	}
	if assets == 0 {
		t.Fatalf("index.html names no script or style: %s", index)
	}
	outside := regexp.MustCompile(`(?:url\(\s*['"]?|import\s*\(?\s*['"]|(?:src|href)=["'])(?:https?:)?//`)
	err = fs.WalkDir(Dist, "dist", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".css") && !strings.HasSuffix(path, ".html") {
			return nil
		}
		b, err := fs.ReadFile(Dist, path)
		if err != nil {
			return err
		}
		if loc := outside.FindIndex(b); loc != nil {
			t.Errorf("%s loads from another host: %q", path, b[loc[0]:min(len(b), loc[1]+40)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
