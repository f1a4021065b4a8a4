package httpx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// serve runs app on a free port over real HTTP until the test ends.
func serve(t *testing.T, app *fiber.App, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpx.Serve(ctx, app, ln, log) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestPanicIsA500ProblemAndTheServerLives: a handler that panics is
// answered with a 500 problem, logged with its request id and stack, and
// the next request is served.
func TestPanicIsA500ProblemAndTheServerLives(t *testing.T) {
	var logs cmdtest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	app := httpx.NewApp("test", 0, log)
	app.Get("/panic", func(*fiber.Ctx) error { panic("the handler broke") })
	app.Get("/ok", func(c *fiber.Ctx) error { return c.SendString("fine") })
	base := serve(t, app, log)

	for range 3 {
		resp, body := get(t, base+"/panic", "X-Request-Id", "req-42")
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != httpx.ContentTypeProblem {
			t.Fatalf("panic answered %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var p httpx.Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Status != 500 || strings.Contains(string(body), "the handler broke") {
			t.Fatalf("problem %s (%v): a 500 problem that does not show the panic", body, err)
		}
		if resp.Header.Get("X-Request-Id") != "req-42" {
			t.Fatalf("X-Request-Id %q, want the request's", resp.Header.Get("X-Request-Id"))
		}
		if resp, body := get(t, base+"/ok"); resp.StatusCode != 200 || string(body) != "fine" {
			t.Fatalf("after a panic: %d %s", resp.StatusCode, body)
		}
	}
	out := logs.String()
	for _, want := range []string{`msg="handler panicked"`, "request_id=req-42", `panic="the handler broke"`, "server_test.go", `msg="request failed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// TestEveryAnswerHasARequestID: the request's own id (when sane), else a
// new one for each request; also on answers the guard gives before Fiber.
func TestEveryAnswerHasARequestID(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := httpx.NewApp("test", 0, log)
	app.Get("/ok", func(c *fiber.Ctx) error { return c.SendString("fine") })
	base := serve(t, app, log)
	seen := map[string]bool{}
	for _, path := range []string{"/ok", "/ok", "/missing"} {
		resp, _ := get(t, base+path)
		id := resp.Header.Get("X-Request-Id")
		if id == "" || seen[id] {
			t.Fatalf("%s: X-Request-Id %q (seen before: %v)", path, id, seen[id])
		}
		seen[id] = true
	}
	if resp, _ := get(t, base+"/ok", "X-Request-Id", "abc-123"); resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("X-Request-Id %q, want the client's abc-123", resp.Header.Get("X-Request-Id"))
	}
	if resp, _ := get(t, base+"/ok", "X-Request-Id", strings.Repeat("x", 500)); len(resp.Header.Get("X-Request-Id")) > 128 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("a 500-character request id came back as %q", resp.Header.Get("X-Request-Id"))
	}
	// A method Fiber does not know is answered by the guard.
	req, _ := http.NewRequest("PROPFIND", base+"/ok", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("PROPFIND: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
}

// TestAccessProblems: the kinds of the policy and of an overloaded
// JetStream are problems with their status and headers.
func TestAccessProblems(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := httpx.NewApp("test", 0, log)
	kinds := map[string]error{
		"/unauthenticated": fmt.Errorf("to create an article needs a bearer token: %w", domain.ErrUnauthenticated),
		"/forbidden":       fmt.Errorf("an author cannot publish: %w", domain.ErrForbidden),
		"/too-many":        fmt.Errorf("append v1 of x: %w: nats: API error: code=429", domain.ErrTooManyRequests),
	}
	for path, err := range kinds {
		app.Get(path, func(*fiber.Ctx) error { return err })
	}
	base := serve(t, app, log)
	for path, want := range map[string]struct {
		status         int
		header, prefix string
	}{
		"/unauthenticated": {401, "WWW-Authenticate", "Bearer"},
		"/forbidden":       {403, "", ""},
		"/too-many":        {429, "Retry-After", "1"},
	} {
		resp, body := get(t, base+path)
		if resp.StatusCode != want.status || resp.Header.Get("Content-Type") != httpx.ContentTypeProblem {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if want.header != "" && !strings.HasPrefix(resp.Header.Get(want.header), want.prefix) {
			t.Errorf("%s: %s %q", path, want.header, resp.Header.Get(want.header))
		}
	}
}
