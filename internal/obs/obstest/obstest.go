// Package obstest records the spans of a test: the OpenTelemetry SDK with
// its in-memory exporter as inkstream's tracer provider.
package obstest

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inkstream/inkstream/internal/obs"
)

// Record turns tracing on until the test ends, every span ending in the
// returned exporter as soon as it ends.
func Record(tb testing.TB) *tracetest.InMemoryExporter {
	tb.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	restore := obs.UseTracerProvider(tp)
	tb.Cleanup(func() {
		restore()
		_ = tp.Shutdown(context.Background())
	})
	return exp
}
