package systest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/obs/obstest"
	"github.com/inkstream/inkstream/internal/systest"
)

// TestTraceFollowsAWriteThroughNATS runs the whole system with the SDK's
// in-memory exporter. A create sent with a client's traceparent must give
// one trace, the client's, in which the command API's request span, the
// JetStream publish, the projector's apply and KV put and the query API's
// view update follow each other, each the parent of the next, each
// starting no earlier than its parent. A write without a traceparent
// starts a trace of its own, traced the same way.
func TestTraceFollowsAWriteThroughNATS(t *testing.T) {
	exp := obstest.Record(t)
	_, s := systest.StartSingle(t, 1)

	clientTrace, clientSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	a, _ := s.Create(systest.Body(1), "traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	s.WaitArticle(a.ID, 1)
	chain := waitChain(t, exp, func(sp tracetest.SpanStub) bool { return sp.SpanContext.TraceID().String() == clientTrace },
		"POST /api/articles")
	if got := chain[0].Parent; !got.IsRemote() || got.SpanID().String() != clientSpan {
		t.Errorf("the request's span has parent %s (remote %v), want the client's span %s", got.SpanID(), got.IsRemote(), clientSpan)
	}

	// Without a traceparent: a trace of its own, rooted at the request.
	b, _ := s.Write(http.MethodPut, a.ID, systest.Body(2))
	s.WaitArticle(a.ID, b.Version)
	chain = waitChain(t, exp, func(sp tracetest.SpanStub) bool {
		return sp.SpanContext.TraceID().String() != clientTrace && sp.Name == "PUT /api/articles/:id"
	}, "PUT /api/articles/:id")
	if chain[0].Parent.IsValid() {
		t.Errorf("a request without traceparent has parent span %s", chain[0].Parent.SpanID())
	}
}

// waitChain waits until the exported spans hold the whole chain of one
// write, starting at the server span named request in the trace that the
// first span matching pick belongs to, and checks it.
func waitChain(t *testing.T, exp *tracetest.InMemoryExporter, pick func(tracetest.SpanStub) bool, request string) []tracetest.SpanStub {
	t.Helper()
	steps := []struct {
		name string
		kind trace.SpanKind
	}{
		{request, trace.SpanKindServer},
		{"publish ARTICLES", trace.SpanKindProducer},
		{"projector apply", trace.SpanKindConsumer},
		{"put articles", trace.SpanKindProducer},
		{"query view update", trace.SpanKindConsumer},
	}
	var chain []tracetest.SpanStub
	natstest.WaitFor(t, 10*time.Second, func() error {
		spans := exp.GetSpans()
		var tid trace.TraceID
		for _, sp := range spans {
			if pick(sp) {
				tid = sp.SpanContext.TraceID()
				break
			}
		}
		if !tid.IsValid() {
			return fmt.Errorf("no span of the trace yet (%d spans)", len(spans))
		}
		chain = chain[:0]
		var parent *tracetest.SpanStub
		for _, step := range steps {
			var found *tracetest.SpanStub
			for i := range spans {
				sp := &spans[i]
				if sp.SpanContext.TraceID() != tid || sp.Name != step.name {
					continue
				}
				if parent == nil || sp.Parent.SpanID() == parent.SpanContext.SpanID() {
					found = sp
					break
				}
			}
			if found == nil {
				return fmt.Errorf("trace %s has no span %q under %v; it has %s", tid, step.name, names(chain), names(inTrace(spans, tid)))
			}
			chain = append(chain, *found)
			parent = found
		}
		return nil
	})
	for i, step := range steps {
		sp := chain[i]
		if sp.SpanKind != step.kind {
			t.Errorf("span %q is of kind %s, want %s", sp.Name, sp.SpanKind, step.kind)
		}
		if i > 0 && sp.StartTime.Before(chain[i-1].StartTime) {
			t.Errorf("span %q starts at %s, before its parent %q at %s", sp.Name, sp.StartTime, chain[i-1].Name, chain[i-1].StartTime)
		}
		if sp.EndTime.Before(sp.StartTime) {
			t.Errorf("span %q ends before it starts", sp.Name)
		}
	}
	return chain
}

func inTrace(spans tracetest.SpanStubs, tid trace.TraceID) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, sp := range spans {
		if sp.SpanContext.TraceID() == tid {
			out = append(out, sp)
		}
	}
	return out
}

func names(spans []tracetest.SpanStub) string {
	var out []string
	for _, sp := range spans {
		out = append(out, fmt.Sprintf("%q", sp.Name))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// scrape reads the /metrics of the process at base.
func scrape(tb testing.TB, s *systest.System, base string) map[string]*dto.MetricFamily {
	tb.Helper()
	r := s.Do(http.MethodGet, base+"/metrics", nil)
	r.Require(tb, http.StatusOK)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		tb.Fatalf("parse %s/metrics: %v", base, err)
	}
	return mfs
}

// sample is the value of the one series of name whose labels include
// labels (name=value pairs); ok is false when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	for _, m := range mfs[name].GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustSample(tb testing.TB, mfs map[string]*dto.MetricFamily, where, name string, labels ...string) float64 {
	tb.Helper()
	v, ok := sample(mfs, name, labels...)
	if !ok {
		tb.Fatalf("%s: no series %s%v", where, name, labels)
	}
	return v
}

// TestMetricsLagWhileProjectorPaused scrapes the /metrics of every process
// while writes go on with the projector stopped: the lag the query API
// reports rises, in events and in seconds, and falls back to 0 once a
// projector runs again, which reports it too. The request metrics name the
// route pattern (one series for all unmatched paths), carry no label of
// their own for the process, and the publish, cache and readiness series
// are there.
func TestMetricsLagWhileProjectorPaused(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	proj := "http://" + s.Projectors[0].Addr
	for _, base := range []string{s.Cmd(), s.Query(), proj} {
		mfs := scrape(t, s, base)
		if v := mustSample(t, mfs, base, "inkstream_ready"); v != 1 {
			t.Errorf("%s: inkstream_ready %v, want 1", base, v)
		}
		for name, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" || l.GetName() == "job" || l.GetName() == "instance" {
						t.Errorf("%s: %s has label %q, which Prometheus' target labels own", base, name, l.GetName())
					}
				}
			}
		}
	}
	for _, base := range []string{s.Query(), proj} {
		mfs := scrape(t, s, base)
		if v := mustSample(t, mfs, base, obs.MetricLagEvents); v != 0 {
			t.Errorf("%s: lag %v events on an idle system", base, v)
		}
		if v := mustSample(t, mfs, base, obs.MetricStreamAvailable); v != 1 {
			t.Errorf("%s: %s %v, want 1", base, obs.MetricStreamAvailable, v)
		}
	}

	// Pause: no projector runs. Write in the background meanwhile.
	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := systest.Do(s.Client, http.MethodPost, s.Cmd()+"/api/articles", systest.Body(1000*w+i))
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("POST during the pause: %v %d %s", err, r.Status, r.Body)
					return
				}
				written.Add(1)
			}
		}()
	}
	var peakEvents, peakSeconds float64
	natstest.WaitFor(t, 30*time.Second, func() error {
		mfs := scrape(t, s, s.Query())
		peakEvents = mustSample(t, mfs, "query-api", obs.MetricLagEvents)
		peakSeconds = mustSample(t, mfs, "query-api", obs.MetricLagSeconds)
		if peakEvents < 50 || peakSeconds < 0.2 {
			return fmt.Errorf("lag %v events, %v s", peakEvents, peakSeconds)
		}
		return nil
	})
	// The command API counts the writes by route pattern, and their
	// publishes. An event is stored before its request is answered and
	// counted: compare once the writers have stopped, every request answered.
	close(stop)
	wg.Wait()
	cmd := scrape(t, s, s.Cmd())
	if v := mustSample(t, cmd, "command-api", "inkstream_http_requests_total", "route", "/api/articles", "method", "POST", "status", "201"); v < peakEvents {
		t.Errorf("command-api counted %v POSTs, fewer than the %v events of lag", v, peakEvents)
	}
	if v := mustSample(t, cmd, "command-api", "inkstream_http_request_duration_seconds", "route", "/api/articles", "method", "POST"); v < peakEvents {
		t.Errorf("command-api observed %v POST durations, fewer than the %v events of lag", v, peakEvents)
	}
	if v := mustSample(t, cmd, "command-api", "inkstream_jetstream_publish_duration_seconds"); v < peakEvents {
		t.Errorf("command-api observed %v publishes, fewer than the %v events of lag", v, peakEvents)
	}
	mustSample(t, cmd, "command-api", "inkstream_jetstream_publish_retries_total")
	mustSample(t, cmd, "command-api", "inkstream_command_conflicts_total")
	t.Logf("the lag reached %v events and %.2f s during %d writes", peakEvents, peakSeconds, written.Load())

	// Resume: the lag falls back to 0, and the projector reports it too.
	p := s.StartProjector()
	for _, base := range []string{s.Query(), "http://" + p.Addr} {
		natstest.WaitFor(t, 30*time.Second, func() error {
			mfs := scrape(t, s, base)
			e, sec := mustSample(t, mfs, base, obs.MetricLagEvents), mustSample(t, mfs, base, obs.MetricLagSeconds)
			if e != 0 || sec != 0 {
				return fmt.Errorf("%s: lag %v events, %v s", base, e, sec)
			}
			return nil
		})
	}

	// One series for every path that matches no route; the caches.
	s.Do(http.MethodGet, s.Query()+"/no/such/path", nil).RequireProblem(t, http.StatusNotFound, "")
	s.Do(http.MethodGet, s.Query()+"/another/path", nil).RequireProblem(t, http.StatusNotFound, "")
	q := scrape(t, s, s.Query())
	if v := mustSample(t, q, "query-api", "inkstream_http_requests_total", "route", httpx.UnmatchedRoute, "status", "404"); v != 2 {
		t.Errorf("query-api counted %v unmatched requests, want 2", v)
	}
	for _, m := range q["inkstream_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "path") {
				t.Errorf("query-api has a series for the unmatched path %q", l.GetValue())
			}
		}
	}
	if v := mustSample(t, q, "query-api", obs.MetricCacheEntries, "cache", "query_articles"); v < peakEvents {
		t.Errorf("query view holds %v entries after %v writes", v, peakEvents)
	}
	if v := mustSample(t, q, "query-api", obs.MetricCacheBytes, "cache", "query_articles"); v < 50*peakEvents {
		t.Errorf("query view holds %v bytes for %v articles", v, peakEvents)
	}
	mustSample(t, q, "query-api", obs.MetricFeedClients)
	mustSample(t, scrape(t, s, s.Cmd()), "command-api", obs.MetricCacheHits, "cache", "command_states")
	mustSample(t, scrape(t, s, "http://"+p.Addr), "projector", obs.MetricCacheEntries, "cache", "projector_snapshots")
}
