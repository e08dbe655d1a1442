package web

import (
	"io/fs"
	"os"
	"path/filepath"
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

// TestNodeModulesHoldNoGo checks that web/node_modules (npm's, git-ignored) holds no Go package: go build ./...
// and go vet ./... from the repository's root would take one for the engine's own. A folder with its own go.mod
// is another module, which ./... leaves out.
func TestNodeModulesHoldNoGo(t *testing.T) {
	root := os.DirFS("node_modules")
	if _, err := fs.Stat(root, "."); err != nil {
		t.Skip("no web/node_modules: make ui or scripts/deps.sh installs it")
	}
	err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if _, err := fs.Stat(root, filepath.ToSlash(filepath.Join(path, "go.mod"))); err == nil {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			t.Errorf("web/node_modules/%s: a Go file that ./... would build; exclude its package (a go.mod beside it) or drop it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
