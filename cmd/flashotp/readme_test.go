package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"flashotp/internal/peers"
)

// demoAPI is the API's address in the README and the demo configuration.
const demoAPI = "http://127.0.0.1:8080"

// shBlocks returns the ```sh blocks of a Markdown file.
func shBlocks(t *testing.T, markdown string) []string {
	t.Helper()
	var blocks []string
	for rest := markdown; ; {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			return blocks
		}
		block, tail, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatal("a ```sh block is not closed")
		}
		blocks = append(blocks, block)
		rest = tail
	}
}

// The README's API walk-through, pasted as it is into a shell in the directory `make run` serves from, works
// against the demo configuration: send, status, verify (its code read from the phone's call log) and list,
// each showing its HTTP status. Only the API's address is the test's (a free port, not 8080), and /tmp its
// own.
func TestREADMEWalkThrough(t *testing.T) {
	bash := peers.Require(t, "bash", "bash")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, b := range shBlocks(t, string(readme)) {
		if strings.Contains(b, demoAPI) {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) != 8 {
		t.Fatalf("%d README blocks call the API, want 8 (send, status, verify, list; sms send, verify; voice send, verify):\n%s", len(blocks), strings.Join(blocks, "\n"))
	}

	// The demo configuration as `make run` serves it, on free ports: the phone's trunk keeps the phone's
	// address, so both become port 0.
	config, err := os.ReadFile("../../configs/flashotp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	demo := strings.NewReplacer("127.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:5060", "127.0.0.1:0", "127.0.0.1:5062", "127.0.0.1:0").Replace(string(config))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flashotp.yaml"), []byte(demo), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "serve", "--config", "flashotp.yaml")
	cmd.Dir = dir
	p := startCmd(t, cmd)
	base := "http://" + p.stderr.waitFor(t, servingLine, 15*time.Second)[1]

	tmp := filepath.Join(dir, "tmp") + "/"
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(script string) string {
		t.Helper()
		script = strings.NewReplacer(demoAPI, base, "/tmp/", tmp).Replace(script)
		sh := exec.Command(bash, "-e", "-o", "pipefail", "-c", script)
		sh.Dir = dir
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
		}
		return string(out)
	}
	// The console, open beside the terminal: signed in with the token the README gives, it shows the send
	// on Live as it happens.
	token := regexp.MustCompile("sign in with the demo's admin token,\\s+`([^`]+)`").FindStringSubmatch(string(readme))
	if token == nil {
		t.Fatal("the README does not say which token signs in to the console")
	}
	b := &browser{t: t, ctx: peers.Browser(t, 1280, 900), base: base}
	b.do("open the console", 20*time.Second, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(tid("signin-form")))
	b.signIn(token[1])
	out := run(blocks[0])
	id := regexp.MustCompile(`otp_[0-9A-Z]+`).FindString(out)
	b.do("the README's send on Live", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid="live-newest-row"][data-id="`+id+`"]`)))
	// A person reads the phone's line before going on; so does the test.
	p.stdout.waitFor(t, missedLine, 15*time.Second)
	out += run(strings.Join(blocks[1:4], "\n"))
	sms := run(blocks[4])
	p.stdout.waitFor(t, smsLine, 15*time.Second)
	sms += run(blocks[5])
	voice := run(blocks[6])
	p.stdout.waitFor(t, heardLine, 30*time.Second)
	voice += run(blocks[7])

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`HTTP/1.1 202 Accepted(?s:.*)"status":"pending"`),            // send
		regexp.MustCompile(`HTTP/1.1 200 OK(?s:.*)"state":"missed"`),                    // status
		regexp.MustCompile(`code: \+44207946[0-9]{4}\n`),                                // the code from the call log
		regexp.MustCompile(`HTTP/1.1 200 OK(?s:.*)"status":"approved"`),                 // verify
		regexp.MustCompile(`HTTP/1.1 200 OK[^{]*\{"items":\[\{"verification_id":"otp_`), // list
	} {
		if !want.MatchString(out) {
			t.Errorf("README walk-through output does not match %s:\n%s", want, out)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`HTTP/1.1 202 Accepted(?s:.*)"steps":\[\{"channel":"sms","state":"queued","via":"trunk","code_length":6,"locale":"en","encoding":"gsm7","segments":1`),
		regexp.MustCompile(`code: [0-9]{6}\n`),
		regexp.MustCompile(`HTTP/1.1 200 OK(?s:.*)"status":"approved"`),
	} {
		if !want.MatchString(sms) {
			t.Errorf("README SMS walk-through output does not match %s:\n%s", want, sms)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`HTTP/1.1 202 Accepted(?s:.*)"steps":\[\{"channel":"voice","state":"queued"`),
		regexp.MustCompile(`code: [0-9]{6}\n`),
		regexp.MustCompile(`HTTP/1.1 200 OK(?s:.*)"status":"approved"`),
	} {
		if !want.MatchString(voice) {
			t.Errorf("README voice walk-through output does not match %s:\n%s", want, voice)
		}
	}
}

var (
	smsLine   = regexp.MustCompile(`sms from \+[0-9]+: [0-9]{6} is your demo verification code`)
	heardLine = regexp.MustCompile(`heard code [0-9]{6} from \+[0-9]+`)
)

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} +(.+)$`)
	notAnchor = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchors returns the anchors GitHub makes of a Markdown file's headings.
func anchors(markdown string) map[string]bool {
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(markdown, -1) {
		out[strings.ReplaceAll(notAnchor.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")] = true
	}
	return out
}

// Every link of the user documentation (README.md, docs/*.md) leads to a file of the repository, and to a
// heading of it where it names one; none points outside the repository, where a user has nothing.
func TestDocLinksResolve(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	links := 0
	for _, file := range files {
		text := read(file)
		name, _ := filepath.Rel(root, file)
		for _, outside := range []string{"../shared", "shared/SPEC"} {
			if strings.Contains(text, outside) {
				t.Errorf("%s names %s, outside the repository", name, outside)
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
			}
			if rel, err := filepath.Rel(root, resolved); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %s leads outside the repository", name, target)
				continue
			}
			if _, err := os.Stat(resolved); err != nil {
				t.Errorf("%s: link %s: %v", name, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchors(read(resolved))[anchor] {
				t.Errorf("%s: link %s: no heading #%s there", name, target, anchor)
			}
		}
	}
	if links == 0 {
		t.Fatal("no links found: the pattern is wrong")
	}
}
