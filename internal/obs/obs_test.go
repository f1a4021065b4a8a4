package obs_test

import (
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/obs/obstest"
	"github.com/inkstream/inkstream/pkg/events"
)

func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestSetupTracingFollowsTheEnvironment: no OTLP endpoint, no tracing; an
// endpoint turns it on until shutdown; a protocol other than OTLP's is an
// error.
func TestSetupTracingFollowsTheEnvironment(t *testing.T) {
	ctx := context.Background()
	for _, e := range [][]string{
		nil,
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1", obs.EnvSDKDisabled, "true"},
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1", obs.EnvTracesExporter, "none"},
	} {
		stop, err := obs.SetupTracing(ctx, "test", env(e...))
		if err != nil || obs.Tracing() {
			t.Errorf("%v: tracing %v, err %v; want off", e, obs.Tracing(), err)
		}
		_ = stop(ctx)
	}
	for _, e := range [][]string{
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1", obs.EnvOTLPProtocol, "http/json"},
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1", obs.EnvTracesExporter, "zipkin"},
	} {
		if _, err := obs.SetupTracing(ctx, "test", env(e...)); err == nil || obs.Tracing() {
			t.Errorf("%v: tracing %v, err %v; want an error", e, obs.Tracing(), err)
		}
	}
	for _, e := range [][]string{
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1"},
		{obs.EnvOTLPTracesEndpoint, "http://127.0.0.1:1/v1/traces"},
		{obs.EnvOTLPEndpoint, "http://127.0.0.1:1", obs.EnvOTLPProtocol, "grpc"},
	} {
		stop, err := obs.SetupTracing(ctx, "test", env(e...))
		if err != nil || !obs.Tracing() {
			t.Fatalf("%v: tracing %v, err %v; want on", e, obs.Tracing(), err)
		}
		sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = stop(sctx) // nothing listens: the flush may fail
		cancel()
		if obs.Tracing() {
			t.Errorf("%v: tracing still on after shutdown", e)
		}
	}
}

// TestTraceContextRoundTrip: a span's context survives the trip through a
// message's trace headers, and a message without them starts nothing.
func TestTraceContextRoundTrip(t *testing.T) {
	exp := obstest.Record(t)
	ctx, span := obs.StartPublish(context.Background(), "publish", "articles.x.created")
	tc := obs.TraceOf(ctx)
	span.End()
	if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`).MatchString(tc.Parent) {
		t.Fatalf("traceparent %q", tc.Parent)
	}
	_, child := obs.StartProcess(context.Background(), "process", tc, []events.TraceContext{{Parent: "malformed"}})
	child.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() || spans[1].SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
		t.Fatalf("the consumer span is not the publish's child: %+v", spans)
	}
	if _, none := obs.StartProcess(context.Background(), "process", events.TraceContext{}, nil); none != nil {
		t.Error("a message without trace context started a span")
	}
	if tc := obs.TraceOf(context.Background()); tc != (events.TraceContext{}) {
		t.Errorf("a context without a span has trace context %+v", tc)
	}
}

func TestCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := obs.NewCache(reg, "a", 1<<20, func() obs.CacheSize { return obs.CacheSize{Entries: 3, Bytes: 300} })
	b := obs.NewCache(reg, "b", 0, func() obs.CacheSize { return obs.CacheSize{Entries: 1, Bytes: 10} })
	a.Hit()
	a.RecordHits(2)
	a.Miss()
	a.Evicted(100)
	b.RecordEviction(7)
	var none *obs.Cache
	none.Hit() // counts nothing, and does not panic
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()+" "+m.GetLabel()[0].GetValue()] = v
		}
	}
	want := map[string]float64{
		"inkstream_cache_hits_total a": 3, "inkstream_cache_misses_total a": 1, "inkstream_cache_evictions_total a": 1,
		"inkstream_cache_evicted_bytes_total a": 100, "inkstream_cache_entries a": 3, "inkstream_cache_bytes a": 300,
		"inkstream_cache_max_bytes a":  1 << 20,
		"inkstream_cache_hits_total b": 0, "inkstream_cache_misses_total b": 0, "inkstream_cache_evictions_total b": 1,
		"inkstream_cache_evicted_bytes_total b": 7, "inkstream_cache_entries b": 1, "inkstream_cache_bytes b": 10,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
}

func TestVersionLine(t *testing.T) {
	b := obs.Build{Module: "v1.2.3", Revision: "0123456789abcdef0123", Time: "2026-11-23T10:00:00Z", Modified: true, Go: "go1.26.8"}
	want := "inkbench v1.2.3 (revision 0123456789ab, 2026-11-23T10:00:00Z, modified) go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH
	if got := b.Line("inkbench"); got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	if got := obs.Version(); got.Go != runtime.Version() || got.Module == "" {
		t.Errorf("Version() = %+v", got)
	}
	if got := (obs.Build{Module: "(devel)", Go: "go1.26.8"}).Line("x"); !strings.HasPrefix(got, "x (devel) go1.26.8 ") {
		t.Errorf("Line without VCS = %q", got)
	}
}
