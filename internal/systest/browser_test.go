package systest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/inkstream/inkstream/internal/systest"
)

// browser starts a headless Chromium (Debian's chromium; make test installs
// it) driven by chromedp, with a fresh profile and none of its background
// connections, and returns a context for its one tab and the URLs of
// every request the tab sent (not those a Content-Security-Policy
// stopped before they left).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no Chromium: `make test` installs Debian's chromium (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true), chromedp.Flag("disable-default-apps", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	requests := map[network.RequestID]string{}
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests[e.RequestID] = e.Request.URL
		case *network.EventLoadingFailed:
			if e.BlockedReason == network.BlockedReasonCsp {
				delete(requests, e.RequestID)
			}
		}
	}); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, u := range requests {
			out = append(out, u)
		}
		return out
	}
}

// screenshot saves the page as name under the test's artifact directory
// (go test -artifacts keeps it; make test does).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// run runs steps with a deadline.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that has a value, with a deadline.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func item(id string) chromedp.CSS { return chromedp.CSS(`li[data-id="` + id + `"]`) }

const hostile = `<script>window.pwned="title"</script><img src=x onerror="window.pwned='img'"> & "quotes"`

// TestPagesInABrowser opens the blog in a real headless Chromium: the home
// page shows the published articles and no draft, a link leads to the
// article's page, an article published meanwhile appears on the open home
// page without a reload, titles and bodies that hold markup show as text,
// and the API reference renders, reached from a problem type URI. The
// browser fetches nothing but from the query API.
func TestPagesInABrowser(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	q := s.Query()
	var published []string
	for i := 0; i < 3; i++ {
		a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Readable article %d", i), "content": "Words.\n\nMore words.", "author_id": "ada", "status": "published", "tags": []string{"go"}})
		published = append(published, a.ID)
		s.Create(map[string]any{"title": fmt.Sprintf("Unfinished draft %d", i), "content": "secret", "author_id": "ada"})
	}
	evil, _ := s.Create(map[string]any{"title": hostile, "content": `<script>window.pwned="body"</script> <b>not bold</b>`, "author_id": "mallory", "status": "published"})
	s.WaitProjected(20 * time.Second)
	s.WaitArticle(evil.ID, 1)

	ctx, requests := browser(t)
	run(t, ctx, "open the home page", chromedp.Navigate(q+"/"), chromedp.WaitVisible(item(evil.ID)))
	listText := get(t, ctx, "read the list", chromedp.Text(chromedp.CSS(`#articles`)))
	for i := range published {
		if !strings.Contains(listText, fmt.Sprintf("Readable article %d", i)) {
			t.Fatalf("the home page does not show article %d: %q", i, listText)
		}
	}
	if strings.Contains(listText, "Unfinished draft") {
		t.Fatalf("the home page shows a draft: %q", listText)
	}
	pwned := func() string {
		return get(t, ctx, "read window.pwned", chromedp.Evaluate[string](`String(window.pwned)`))
	}
	if !strings.Contains(listText, hostile) || pwned() != "undefined" {
		t.Fatalf("the hostile title is not shown as text (pwned %s): %q", pwned(), listText)
	}
	screenshot(t, ctx, "home.png")

	// Newly published articles appear on the open page, without a reload.
	get(t, ctx, "mark the page", chromedp.Evaluate[string](`window.notReloaded = "yes"`))
	fresh, _ := s.Create(map[string]any{"title": "Fresh from the feed", "content": "New.", "author_id": "ada", "status": "published"})
	live, _ := s.Create(map[string]any{"title": hostile + " live", "content": "x", "author_id": "mallory", "status": "published"})
	draft, _ := s.Create(map[string]any{"title": "A draft published later", "content": "x", "author_id": "ada"})
	s.Write(http.MethodPatch, draft.ID, map[string]any{"status": "published"}, "Content-Type", "application/merge-patch+json")
	run(t, ctx, "see the new articles appear", chromedp.WaitVisible(item(fresh.ID)), chromedp.WaitVisible(item(live.ID)), chromedp.WaitVisible(item(draft.ID)))
	if m := get(t, ctx, "read the mark", chromedp.Evaluate[string](`String(window.notReloaded)`)); m != "yes" {
		t.Fatal("the home page was reloaded")
	}
	if liveText := get(t, ctx, "read the live title", chromedp.Text(chromedp.CSS(`li[data-id="`+live.ID+`"] h2`))); pwned() != "undefined" || liveText != hostile+" live" {
		t.Fatalf("a live title ran or did not show as text: pwned %s, %q", pwned(), liveText)
	}
	if first := get(t, ctx, "read the first item", chromedp.AttributeValue(chromedp.CSS(`#articles li:first-child`), "data-id")); first.Value != draft.ID {
		t.Fatalf("the newest article on the page is %s, want the one just published, %s", first.Value, draft.ID)
	}
	// Unpublished: it leaves the page.
	s.Write(http.MethodPatch, fresh.ID, map[string]any{"status": "draft"}, "Content-Type", "application/merge-patch+json")
	run(t, ctx, "see an unpublished article go", chromedp.WaitNotPresent(item(fresh.ID)))
	screenshot(t, ctx, "home-live.png")

	// Follow a link to an article's page.
	run(t, ctx, "follow a link", chromedp.Click(chromedp.CSS(`li[data-id="`+published[1]+`"] h2 a`)), chromedp.WaitVisible(chromedp.CSS(`article h1`)))
	h1 := get(t, ctx, "read the title", chromedp.Text(chromedp.CSS(`article h1`)))
	location := get(t, ctx, "read the location", chromedp.Location())
	if h1 != "Readable article 1" || location != q+"/articles/"+published[1]+"/readable-article-1" {
		t.Fatalf("the link led to %s, titled %q", location, h1)
	}
	screenshot(t, ctx, "article.png")

	// The hostile article's own page, through its short URL.
	run(t, ctx, "open the hostile article", chromedp.Navigate(q+"/articles/"+evil.ID), chromedp.WaitVisible(chromedp.CSS(`article h1`)))
	h1 = get(t, ctx, "read the title", chromedp.Text(chromedp.CSS(`article h1`)))
	body := get(t, ctx, "read the body", chromedp.Text(chromedp.CSS(`article .content`)))
	location = get(t, ctx, "read the location", chromedp.Location())
	if h1 != hostile || !strings.Contains(body, `<script>window.pwned="body"</script> <b>not bold</b>`) || pwned() != "undefined" {
		t.Fatalf("the hostile article is not shown as text: pwned %s, h1 %q, body %q", pwned(), h1, body)
	}
	if !strings.HasPrefix(location, q+"/articles/"+evil.ID+"/") {
		t.Fatalf("the short URL led to %s", location)
	}
	screenshot(t, ctx, "article-hostile.png")

	// A problem type URI resolves to its section of the API reference.
	section := chromedp.CSS(`[id="section/Problem-types/not-found"]`)
	run(t, ctx, "resolve a problem type", chromedp.Navigate(q+"/problems/not-found"), chromedp.WaitVisible(section))
	text := get(t, ctx, "read the section", chromedp.Text(section))
	location = get(t, ctx, "read the location", chromedp.Location())
	if !strings.Contains(text, "a draft's existence never leaks") || location != q+"/docs#section/Problem-types/not-found" {
		t.Fatalf("the problem type led to %s, reading %q", location, text)
	}
	screenshot(t, ctx, "docs.png")

	for _, r := range requests() {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme == "http" || u.Scheme == "https") && "http://"+u.Host != q {
			t.Errorf("the browser fetched %s, not from the query API", r)
		}
	}
}
