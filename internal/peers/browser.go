package peers

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts Debian's chromium headless, driven over the DevTools protocol with chromedp, with a window
// of width × height, and returns a tab's context. The browser is its own process group, stopped when the
// test ends. Without chromium the test is skipped, or fails under CI=true.
func Browser(t testing.TB, width, height int) context.Context {
	t.Helper()
	exe := Require(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	// The first call starts the browser, and its context is the browser's life: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
