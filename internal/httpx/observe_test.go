package httpx_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/obs/obstest"
)

// jsonLines parses the JSON log lines written to b.
func jsonLines(tb testing.TB, b *cmdtest.SyncBuffer) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// app is a Fiber app as the services build it (NewApp has the request id
// middleware), then the request metrics and Trace, then routes that log.
func app(reg *prometheus.Registry, log *slog.Logger) *fiber.App {
	a := httpx.NewApp("test", 0, log)
	a.Use(httpx.RequestMetrics(reg), httpx.Trace())
	a.Get("/", func(c *fiber.Ctx) error { return c.SendString("home") })
	a.Get("/api/articles/:id", func(c *fiber.Ctx) error {
		log.InfoContext(c.UserContext(), "reading", "id", c.Params("id"))
		if c.Params("id") == "gone" {
			return fiber.NewError(fiber.StatusNotFound, "no article gone")
		}
		return c.SendString("article")
	})
	a.Post("/api/articles", func(c *fiber.Ctx) error { return errors.New("boom") })
	return a
}

func do(tb testing.TB, a *fiber.App, method, path string, headers ...string) int {
	tb.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.Test(req, -1)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// counts reads inkstream_http_requests_total as route method status → count.
func counts(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "inkstream_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if len(l) != 3 {
				tb.Errorf("series with labels %v, want route, method and status only", l)
			}
			out[l["route"]+" "+l["method"]+" "+l["status"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestRequestMetricsLabelRoutePatterns(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := app(reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, p := range []string{"/api/articles/1", "/api/articles/2", "/api/articles/gone", "/", "/nope", "/api/articles/1/nope", "/nope?x=1"} {
		do(t, a, "GET", p)
	}
	do(t, a, "DELETE", "/api/articles/1") // a path that routes, not for this method: 405
	do(t, a, "POST", "/api/articles")     // an error the handler returns: 500
	want := map[string]float64{
		"/api/articles/:id GET 200":          2,
		"/api/articles/:id GET 404":          1,
		"/ GET 200":                          1,
		httpx.UnmatchedRoute + " GET 404":    3,
		httpx.UnmatchedRoute + " DELETE 405": 1,
		"/api/articles POST 500":             1,
	}
	got := counts(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v requests, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s: %v", k, got[k])
		}
	}
}

// TestTraceHonoursTraceparentAndLabelsLogLines: with tracing on, a request
// with a traceparent gets a server span in the client's trace, named for
// the route pattern; every line logged with the request's context carries
// its request id and trace id, the 500's error line too; without tracing
// the request id is there all the same.
func TestTraceHonoursTraceparentAndLabelsLogLines(t *testing.T) {
	var logs cmdtest.SyncBuffer
	log := slog.New(obs.LogHandler(slog.NewJSONHandler(&logs, nil)))
	a := app(prometheus.NewRegistry(), log)

	do(t, a, "GET", "/api/articles/7", "X-Request-Id", "req-untraced")
	lines := jsonLines(t, &logs)
	if len(lines) != 1 || lines[0]["request_id"] != "req-untraced" || lines[0]["trace_id"] != nil {
		t.Fatalf("with tracing off, log lines %v; want one with request_id req-untraced and no trace_id", lines)
	}

	// An id the middleware made (the client sent none) is the answer's.
	resp, err := a.Test(httptest.NewRequest("GET", "/api/articles/8", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	lines = jsonLines(t, &logs)
	if rid := resp.Header.Get("X-Request-Id"); rid == "" || len(lines) != 2 || lines[1]["request_id"] != rid {
		t.Fatalf("log lines %v; want the second with the answer's request id %q", lines, rid)
	}

	exp := obstest.Record(t)
	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	do(t, a, "GET", "/api/articles/8", "traceparent", "00-"+traceID+"-"+parent+"-01", "X-Request-Id", "req-1")
	do(t, a, "POST", "/api/articles", "traceparent", "00-"+traceID+"-"+parent+"-01", "X-Request-Id", "req-2")

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %v", len(spans), spans)
	}
	for i, name := range []string{"GET /api/articles/:id", "POST /api/articles"} {
		sp := spans[i]
		if sp.Name != name || sp.SpanContext.TraceID().String() != traceID || sp.Parent.SpanID().String() != parent || !sp.Parent.IsRemote() {
			t.Errorf("span %d: %q in trace %s under %s, want %q in the client's trace %s under %s",
				i, sp.Name, sp.SpanContext.TraceID(), sp.Parent.SpanID(), name, traceID, parent)
		}
	}
	if spans[1].Status.Code.String() != "Error" {
		t.Errorf("the 500's span has status %v", spans[1].Status)
	}
	lines = jsonLines(t, &logs)[2:]
	if len(lines) != 2 {
		t.Fatalf("log lines %v, want the GET's and the 500's", lines)
	}
	for i, want := range []struct{ msg, rid, span string }{
		{"reading", "req-1", spans[0].SpanContext.SpanID().String()},
		{"request failed", "req-2", spans[1].SpanContext.SpanID().String()},
	} {
		l := lines[i]
		if l["msg"] != want.msg || l["request_id"] != want.rid || l["trace_id"] != traceID || l["span_id"] != want.span {
			t.Errorf("log line %v: want msg %q, request_id %s, trace_id %s, span_id %s", l, want.msg, want.rid, traceID, want.span)
		}
	}
}
