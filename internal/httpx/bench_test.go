package httpx_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/obs"
)

// BenchmarkRequestPipeline measures what the request middleware costs a
// request that the handler answers at once, as the cached GET is: the app
// as NewApp makes it (with its request id and recover middleware); with the
// request metrics; with Trace too, tracing off (no exporter configured),
// which carries the request id in the request's context; and with tracing
// on, every span sampled out, and every span recorded (into an exporter
// that drops them).
//
//	go test -run '^$' -bench RequestPipeline -benchmem ./internal/httpx
func BenchmarkRequestPipeline(b *testing.B) {
	body := []byte(`{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","title":"t","content":"c"}`)
	handler := func(c *fiber.Ctx) error { return c.Send(body) }
	for _, bc := range []struct {
		name    string
		mw      []any
		tracing sdktrace.Sampler // nil: off
	}{
		{name: "bare"},
		{name: "metrics", mw: []any{httpx.RequestMetrics(prometheus.NewRegistry())}},
		{name: "metrics+trace-off", mw: []any{httpx.RequestMetrics(prometheus.NewRegistry()), httpx.Trace()}},
		{name: "metrics+trace-on-sampled-out", mw: []any{httpx.RequestMetrics(prometheus.NewRegistry()), httpx.Trace()}, tracing: sdktrace.NeverSample()},
		{name: "metrics+trace-on-recorded", mw: []any{httpx.RequestMetrics(prometheus.NewRegistry()), httpx.Trace()}, tracing: sdktrace.AlwaysSample()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.tracing != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.tracing), sdktrace.WithSyncer(discard{}))
				defer obs.UseTracerProvider(tp)()
			}
			app := httpx.NewApp("bench", 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if len(bc.mw) > 0 {
				app.Use(bc.mw...)
			}
			app.Get("/api/articles/:id", handler)
			h := app.Handler()
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI("/api/articles/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
				ctx.Request.Header.SetMethod(fiber.MethodGet)
				h(&ctx)
				if ctx.Response.StatusCode() != fiber.StatusOK {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
		})
	}
}

// discard is a span exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
