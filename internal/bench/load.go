package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Load is the outcome of one load: throughput of successful requests and
// their latency. Failed requests count as errors and are left out of the
// latencies.
type Load struct {
	Requests int64   `json:"requests"` // successful
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"` // measured span
	RPS      float64 `json:"rps"`     // successful requests per second
	Latency
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	CPU        []ProcCPU        `json:"cpu,omitempty"` // per process, over the measured span
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// Dist is the latency at each of distQuantiles, for the charts.
	Dist []Quantile `json:"distribution,omitempty"`
}

// latencyOf sorts ds and reads its percentiles (nearest rank).
func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.999999) - 1
		i = min(max(i, 0), len(ds)-1)
		return ms(ds[i])
	}
	l := Latency{P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: ms(ds[len(ds)-1])}
	for _, q := range distQuantiles {
		l.Dist = append(l.Dist, Quantile{Q: q, MS: at(q)})
	}
	return l
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// errorKinds merges per-worker error counts.
type errorKinds map[string]int64

// add counts one error of a kind; past 20 kinds the rest are "other".
func (e errorKinds) add(kind string) {
	if len(kind) > 120 {
		kind = kind[:120]
	}
	if _, ok := e[kind]; !ok && len(e) >= 20 {
		kind = "other"
	}
	e[kind]++
}

// statusKind names an unexpected status for errorKinds.
func statusKind(code int) string {
	return fmt.Sprintf("status %d %s", code, http.StatusText(code))
}

func (e errorKinds) String() string {
	var parts []string
	for k, n := range e {
		parts = append(parts, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// closedLoop describes a load of conns workers, each with its own
// connection, each sending the next request as soon as the previous one
// has been answered: "at conns connections".
type closedLoop struct {
	addr     string // host:port, always loopback
	conns    int
	warmup   time.Duration // run first, not measured
	duration time.Duration
	// build fills request number i of worker w.
	build func(w, i int, req *fasthttp.Request)
	// want is the status code of success.
	want int
	// check, if set, is called on each successful response of worker w.
	check func(w int, resp *fasthttp.Response)
	// cpu, if set, measures the CPU of the measured phase.
	cpu *cpuMeter

	clients  []*fasthttp.HostClient // one connection each, made by the first slice
	counters []int                  // request numbers keep counting across slices
}

// clientFor returns a client with exactly one connection to addr.
func clientFor(addr string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      addr,
		MaxConns:                  conns,
		ReadTimeout:               10 * time.Second,
		WriteTimeout:              10 * time.Second,
		MaxIdleConnDuration:       time.Minute,
		MaxConnWaitTimeout:        10 * time.Second,
		MaxIdemponentCallAttempts: 1, // a failure is an error, not a silent retry
		NoDefaultUserAgentHeader:  true,
	}
}

// run runs the warm-up, then the measured load. Each phase's request count
// is bounded by its duration; ctx ends it early (the result then is an error).
func (l closedLoop) run(ctx context.Context) (Load, error) {
	res, err := interleaved(ctx, 1, &l)
	if err != nil {
		return Load{}, err
	}
	return res[0], nil
}

// turnTaker is a load that runs in slices, keeping its connections and
// request numbers from one slice to the next.
type turnTaker interface {
	// spans returns the warm-up and the measured duration.
	spans() (warmup, duration time.Duration)
	// meter measures the CPU of the measured slices, if not nil.
	meter() *cpuMeter
	// slice runs the load for d and returns each worker's results and the
	// time it took.
	slice(ctx context.Context, d time.Duration) ([]workerResult, time.Duration, error)
	// close releases the connections.
	close()
}

func (l *closedLoop) spans() (time.Duration, time.Duration) { return l.warmup, l.duration }
func (l *closedLoop) meter() *cpuMeter                      { return l.cpu }

func (l *closedLoop) slice(ctx context.Context, d time.Duration) ([]workerResult, time.Duration, error) {
	if l.clients == nil {
		l.clients = make([]*fasthttp.HostClient, l.conns)
		for w := range l.clients {
			l.clients[w] = clientFor(l.addr, 1)
		}
		l.counters = make([]int, l.conns)
	}
	return l.phase(ctx, l.clients, l.counters, d)
}

func (l *closedLoop) close() {
	for _, c := range l.clients {
		c.CloseIdleConnections()
	}
}

// interleaved runs the warm-ups of loads, then their measured loads in
// turns: each load's duration is cut into rounds slices, and a slice of
// each runs in turn, round after round. Loads compared with each other (a
// target and its baseline) so share the machine's slow drifts, which on a
// shared machine otherwise fall on one of them. Each result merges its
// slices; its CPU figures cover them alone.
func interleaved(ctx context.Context, rounds int, loads ...turnTaker) ([]Load, error) {
	type state struct {
		results []workerResult
		elapsed time.Duration
	}
	st := make([]state, len(loads))
	defer func() {
		for _, l := range loads {
			l.close()
		}
	}()
	for _, l := range loads {
		if warmup, _ := l.spans(); warmup > 0 {
			if _, _, err := l.slice(ctx, warmup); err != nil {
				return nil, err
			}
		}
	}
	for range rounds {
		for i, l := range loads {
			_, duration := l.spans()
			d := duration / time.Duration(rounds)
			if m := l.meter(); m != nil {
				m.begin()
			}
			profiled := l.meter().profileSpan(d)
			res, took, err := l.slice(ctx, d)
			if err != nil {
				profiled()
				return nil, err
			}
			if m := l.meter(); m != nil {
				m.pause()
			}
			profiled()
			st[i].elapsed += took
			if st[i].results == nil {
				st[i].results = make([]workerResult, len(res))
			}
			for w, r := range res {
				acc := &st[i].results[w]
				acc.lat = append(acc.lat, r.lat...)
				acc.errors += r.errors
				if acc.kinds == nil {
					acc.kinds = errorKinds{}
				}
				for k, n := range r.kinds {
					acc.kinds[k] += n
				}
			}
		}
	}
	out := make([]Load, len(loads))
	for i, l := range loads {
		out[i] = merge(st[i].results, st[i].elapsed)
		if m := l.meter(); m != nil {
			out[i].CPU = m.end(out[i].RPS)
		}
	}
	return out, nil
}

type workerResult struct {
	lat    []time.Duration
	errors int64
	kinds  errorKinds
}

// phase runs the load for d and returns each worker's results and the
// time it took.
func (l closedLoop) phase(ctx context.Context, clients []*fasthttp.HostClient, counters []int, d time.Duration) ([]workerResult, time.Duration, error) {
	return drive(ctx, len(clients), d, func(w int) (func() string, func()) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		release := func() {
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
		return func() string {
			req.Reset()
			resp.Reset()
			l.build(w, counters[w], req)
			counters[w]++
			err := clients[w].Do(req, resp)
			switch {
			case err != nil:
				return "transport: " + err.Error()
			case resp.StatusCode() != l.want:
				return statusKind(resp.StatusCode())
			}
			if l.check != nil {
				l.check(w, resp)
			}
			return ""
		}, release
	})
}

// drive runs workers goroutines for d. Each gets its request function and
// its release from newWorker, calls the request in a loop and times it; an
// empty error kind is a success. It returns each worker's results and the
// time it took.
func drive(ctx context.Context, workers int, d time.Duration, newWorker func(w int) (do func() (errKind string), release func())) ([]workerResult, time.Duration, error) {
	results := make([]workerResult, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			r.kinds = errorKinds{}
			r.lat = make([]time.Duration, 0, 4096)
			do, release := newWorker(w)
			defer release()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				kind := do()
				took := time.Since(t0)
				if kind != "" {
					r.errors++
					r.kinds.add(kind)
					continue
				}
				r.lat = append(r.lat, took)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return results, time.Since(start), nil
}
