package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/procs"
)

// runner is one run of the whole measurement.
type runner struct {
	cfg  *Config
	logf func(string, ...any)
	ps   *children
	dir  string // logs and JetStream stores
	// authz is the Authorization header of the writes: an editor's token
	// of the development key in dir, which the APIs trust. Reads go
	// without a token, as a blog's readers do: the articles are published.
	authz string
}

func (r *runner) run(ctx context.Context) (res Result, err error) {
	r.dir, err = os.MkdirTemp("", "inkbench-")
	if err != nil {
		return res, err
	}
	r.ps = newChildren(r.dir, r.logf, r.cfg.OnStart)
	if r.authz, err = editorAuthorization(r.dir); err != nil {
		return res, err
	}
	defer func() {
		r.ps.stopAll(5 * time.Second)
		// The stores can take gigabytes; the logs stay when something
		// failed or misbehaved, unless the run was interrupted.
		_ = os.RemoveAll(filepath.Join(r.dir, "store-loads"))
		_ = os.RemoveAll(filepath.Join(r.dir, "store-replay"))
		switch {
		case err == nil && !r.ps.keepLogs(), errors.Is(err, context.Canceled):
			_ = os.RemoveAll(r.dir)
		case err == nil:
			r.logf("process logs kept in %s", r.dir)
		default:
			err = fmt.Errorf("%w\n(process logs kept in %s)", err, r.dir)
		}
	}()
	if r.cfg.runs("loads") {
		if err = r.loads(ctx, &res); err != nil {
			return res, err
		}
	}
	if r.cfg.runs("replay") {
		if err = r.replay(ctx, &res); err != nil {
			return res, err
		}
	}
	res.ratios()
	return res, nil
}

// startListening starts a process that listens on a free loopback port
// (args builds its arguments from the address) and waits until ready says
// it is. A port taken in between is retried on another one.
func (r *runner) startListening(name, bin string, args func(addr string) []string, ready func(p *proc, addr string, started time.Time) error) (*proc, string, error) {
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		started := time.Now()
		p, err := r.ps.start(name, bin, args(addr)...)
		if err != nil {
			return nil, "", err
		}
		err = ready(p, addr, started)
		if err == nil {
			return p, addr, nil
		}
		if p.Exited() && attempt < 3 && strings.Contains(p.Tail(50), "address already in use") {
			r.logf("%s: port of %s was taken; another one", name, addr)
			continue
		}
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
}

// startNATS starts a nats-server with JetStream storing in r.dir/store and
// returns it with the harness's own connection.
func (r *runner) startNATS(ctx context.Context, name, store string) (*proc, string, *natsConn, error) {
	var conn natsConn
	var url string
	p, _, err := r.startListening(name, r.cfg.bin("nats-server"), func(addr string) []string {
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", filepath.Join(r.dir, store), "-n", name}
		if r.cfg.Pprof {
			if prof, err := freeAddr(); err == nil {
				_, pport, _ := net.SplitHostPort(prof)
				args = append(args, "--profile", pport)
				r.logf("%s: pprof: http://127.0.0.1:%s/debug/pprof/", name, pport)
			}
		}
		return args
	}, func(p *proc, addr string, _ time.Time) error {
		url = "nats://" + addr
		var err error
		conn.nc, conn.js, err = connectJS(ctx, p, url)
		return err
	})
	if err != nil {
		return nil, "", nil, err
	}
	r.logf("%s: %s, store in %s", name, url, filepath.Join(r.dir, store))
	return p, url, &conn, nil
}

// startService starts command-api, projector or query-api (bin) against
// natsURL and waits for its /readyz.
func (r *runner) startService(ctx context.Context, name, bin, natsURL string) (*proc, string, time.Duration, error) {
	var took time.Duration
	p, addr, err := r.startListening(name, r.cfg.bin(bin), func(addr string) []string {
		args := []string{"-nats-url", natsURL, "-listen", addr}
		if bin != "projector" {
			args = append(args, "-auth-jwks-file", filepath.Join(r.dir, auth.DevJWKSFile))
		}
		if r.cfg.Pprof {
			args = append(args, "-pprof")
		}
		return args
	}, func(p *proc, addr string, started time.Time) error {
		var err error
		took, err = waitReady(ctx, p, addr, started, 5*time.Millisecond, 2*time.Minute)
		return err
	})
	if err != nil {
		return nil, "", 0, err
	}
	if r.cfg.Pprof {
		r.logf("%s: http://%s (pprof: http://%s/debug/pprof/)", name, addr, addr)
	} else {
		r.logf("%s: http://%s ready in %s", name, addr, took.Round(time.Millisecond))
	}
	return p, addr, took, nil
}

// alive fails when one of ps has exited.
func alive(ps ...*proc) error {
	for _, p := range ps {
		if p.Exited() {
			return p.DiedError()
		}
	}
	return nil
}

// loads runs the HTTP loads, their baselines and write → visible against
// one nats-server and the three services.
func (r *runner) loads(ctx context.Context, res *Result) error {
	c := r.cfg
	ns, url, conn, err := r.startNATS(ctx, "nats-server", "store-loads")
	if err != nil {
		return err
	}
	defer conn.nc.Close()
	js := conn.js
	// The services look the stream, bucket and consumer up: provision them,
	// as an admin does.
	ncfg, err := natsDefaults(url)
	if err != nil {
		return err
	}
	if _, err := natsx.Provision(ctx, js, ncfg, quiet); err != nil {
		return err
	}
	cmd, cmdAddr, _, err := r.startService(ctx, "command-api", "command-api", url)
	if err != nil {
		return err
	}
	proj, _, _, err := r.startService(ctx, "projector", "projector", url)
	if err != nil {
		return err
	}
	query, queryAddr, _, err := r.startService(ctx, "query-api", "query-api", url)
	if err != nil {
		return err
	}
	all := []*proc{ns, cmd, proj, query}

	r.logf("seeding %d articles", c.SeedArticles)
	ids, err := seed(ctx, cmdAddr, c.SeedArticles, c.Conns, r.authz)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	res.Notes.SeedArticles = int64(len(ids))
	if _, err := r.settle(ctx, js, proj); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := procs.Poll(ctx, query.Proc, "query-api view to hold the seeded articles", 20*time.Millisecond, time.Minute, func() (bool, error) {
		n, err := metric(ctx, queryAddr, "inkstream_query_articles")
		return n >= float64(len(ids)), err
	}); err != nil {
		return err
	}
	bodies, err := fetchArticles(ctx, queryAddr, ids)
	if err != nil {
		return err
	}

	// The cached GET next to its baseline, interleaved.
	misses, err := metric(ctx, queryAddr, obs.MetricCacheMisses, "cache", "query_articles")
	if err != nil {
		return err
	}
	if res.RawFiber, res.Get, err = r.getVsRawFiber(ctx, ids, bodies, queryAddr, all, res); err != nil {
		return err
	}
	after, err := metric(ctx, queryAddr, obs.MetricCacheMisses, "cache", "query_articles")
	if err != nil {
		return err
	}
	res.Notes.GetCacheMisses = int64(after - misses)
	list := "http://" + queryAddr + "/api/articles?limit=20"
	if res.List, err = r.load(ctx, "GET /api/articles?limit=20", closedLoop{addr: queryAddr, want: http.StatusOK,
		build: func(_, _ int, req *fasthttp.Request) { req.SetRequestURI(list) }}, all...); err != nil {
		return err
	}

	// POST next to its baseline, in turns. The projector and the query API
	// fold the baseline's events too, as the POSTs'.
	raw := &publishLoop{js: js, conns: c.Conns, warmup: c.warmup(), duration: c.Duration, cpu: newCPUMeter(all...)}
	postLoop := &closedLoop{addr: cmdAddr, build: post(cmdAddr, r.authz), want: http.StatusCreated,
		conns: c.Conns, warmup: c.warmup(), duration: c.Duration, cpu: newCPUMeter(all...)}
	r.logf("baseline: raw sync JetStream publish (%d publishers) and POST /api/articles (%d connections): %s warm-up + %s each, in %d turns",
		c.Conns, c.Conns, c.warmup(), c.Duration, turns)
	out, err := interleaved(ctx, turns, raw, postLoop)
	if err != nil {
		return fmt.Errorf("raw publish and POST: %w", err)
	}
	if err := alive(all...); err != nil {
		return fmt.Errorf("raw publish and POST: %w", err)
	}
	res.RawPublish, res.Post = out[0], out[1]
	r.logf("baseline: raw sync JetStream publish: %s", summary(res.RawPublish))
	r.logf("POST /api/articles: %s", summary(res.Post))
	took, err := r.settle(ctx, js, proj)
	if err != nil {
		return fmt.Errorf("after POST: %w", err)
	}
	res.Notes.PostCatchUpMS = ms(took)
	if res.Put, err = r.load(ctx, "PUT /api/articles/{id}", closedLoop{addr: cmdAddr, build: put(cmdAddr, ids, c.Conns, r.authz), want: http.StatusOK}, all...); err != nil {
		return err
	}
	if took, err = r.settle(ctx, js, proj); err != nil {
		return fmt.Errorf("after PUT: %w", err)
	}
	res.Notes.PutCatchUpMS = ms(took)

	r.logf("write → visible: %d writes/s for %s", c.VisibilityRate, c.Duration)
	replays, err := metric(ctx, queryAddr, "inkstream_query_replays_total")
	if err != nil {
		return err
	}
	if res.Visibility, err = (visibilityLoad{commandAddr: cmdAddr, authz: r.authz, queryAddr: queryAddr, ids: ids, sample: max(c.VisibilityRate/250, 1), rate: c.VisibilityRate, duration: c.Duration,
		pollTimeout: 10 * time.Second, js: js, projector: proj}).run(ctx); err != nil {
		return fmt.Errorf("write → visible: %w", err)
	}
	after, err = metric(ctx, queryAddr, "inkstream_query_replays_total")
	if err != nil {
		return err
	}
	res.Visibility.ReplaysOnMiss = int64(after - replays)
	v := res.Visibility
	r.logf("write → visible: %.0f writes/s sent, p50 %s ms, p99 %s ms, max %s ms, %d errors", v.Achieved, fmtMS(v.P50), fmtMS(v.P99), fmtMS(v.Max), v.WriteErrors+v.PollErrors)
	if err := alive(all...); err != nil {
		return err
	}

	for _, p := range []*proc{cmd, query, proj, ns} {
		r.ps.stop(p, 10*time.Second)
	}
	res.RSS = append(res.RSS, RSS{"nats-server (loads)", mib(ns)}, RSS{"command-api", mib(cmd)},
		RSS{"projector (loads)", mib(proj)}, RSS{"query-api (loads)", mib(query)})
	return nil
}

func mib(p *proc) float64 { return float64(p.peakRSS()) / 1024 }

// natsConn is the harness's own connection to a nats-server.
type natsConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// settle waits until the projector has acknowledged the whole stream and
// returns how long that took.
func (r *runner) settle(ctx context.Context, js jetstream.JetStream, proj *proc) (time.Duration, error) {
	start := time.Now()
	last, err := lastSeq(ctx, js)
	if err != nil {
		return 0, err
	}
	at, _, err := waitProjected(ctx, js, proj, last, 5*time.Millisecond, 3*time.Minute, func(int64) {})
	if err != nil {
		return 0, err
	}
	return max(at.Sub(start), 0), nil
}

// load runs a closed-loop load at cfg.Conns connections for cfg.Duration
// and checks that the processes survived it.
func (r *runner) load(ctx context.Context, name string, l closedLoop, procs ...*proc) (Load, error) {
	l.conns, l.warmup, l.duration = r.cfg.Conns, r.cfg.warmup(), r.cfg.Duration
	l.cpu = newCPUMeter(procs...)
	r.logf("%s: %d connections, %s warm-up + %s", name, l.conns, l.warmup, l.duration)
	res, err := l.run(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if err := alive(procs...); err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	r.logf("%s: %s", name, summary(res))
	return res, nil
}

func summary(l Load) string {
	s := fmt.Sprintf("%.0f/s, p50 %s ms, p99 %s ms, p99.9 %s ms, %d errors", l.RPS, fmtMS(l.P50), fmtMS(l.P99), fmtMS(l.P999), l.Errors)
	if len(l.ErrorKinds) > 0 {
		s += " (" + errorKinds(l.ErrorKinds).String() + ")"
	}
	return s
}

// turns is how many turns a load and its baseline take (the cached GET and
// raw Fiber, POST and raw publish): each runs a quarter of its duration at
// a time.
const turns = 4

// getVsRawFiber measures the cached GET and its baseline, `inkbench
// serve-fiber` answering the same articles' JSON from a map, under the
// same load, in turns (interleaved).
func (r *runner) getVsRawFiber(ctx context.Context, ids []string, bodies map[string]json.RawMessage, queryAddr string, all []*proc, res *Result) (raw, get Load, err error) {
	data := filepath.Join(r.dir, "articles.json")
	b, err := json.Marshal(bodies)
	if err != nil {
		return raw, get, err
	}
	if err := os.WriteFile(data, b, 0o644); err != nil {
		return raw, get, err
	}
	p, addr, err := r.startListening("fiber-baseline", r.cfg.bin("inkbench"), func(addr string) []string {
		return []string{"serve-fiber", "-listen", addr, "-data", data}
	}, func(p *proc, addr string, started time.Time) error {
		_, err := waitReady(ctx, p, addr, started, 5*time.Millisecond, 30*time.Second)
		return err
	})
	if err != nil {
		return raw, get, err
	}
	defer func() {
		r.ps.stop(p, 5*time.Second)
		res.RSS = append(res.RSS, RSS{"raw Fiber baseline", mib(p)})
	}()
	c := r.cfg
	loops := []*closedLoop{
		{addr: addr, build: getByID(addr, ids), want: http.StatusOK, cpu: newCPUMeter(p)},
		{addr: queryAddr, build: getByID(queryAddr, ids), want: http.StatusOK, cpu: newCPUMeter(all...)},
	}
	for _, l := range loops {
		l.conns, l.warmup, l.duration = c.Conns, c.warmup(), c.Duration
	}
	r.logf("baseline: raw Fiber GET by id and GET /api/articles/{id} (cached): %d connections, %s warm-up + %s each, in %d turns",
		c.Conns, c.warmup(), c.Duration, turns)
	out, err := interleaved(ctx, turns, loops[0], loops[1])
	if err != nil {
		return raw, get, fmt.Errorf("cached GET and raw Fiber: %w", err)
	}
	if err := alive(append(all, p)...); err != nil {
		return raw, get, err
	}
	raw, get = out[0], out[1]
	r.logf("baseline: raw Fiber GET by id: %s", summary(raw))
	r.logf("GET /api/articles/{id} (cached): %s", summary(get))
	return raw, get, nil
}

// getByID requests the articles in turn, each connection from its own offset.
func getByID(addr string, ids []string) func(w, i int, req *fasthttp.Request) {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = "http://" + addr + "/api/articles/" + id
	}
	return func(w, i int, req *fasthttp.Request) {
		req.SetRequestURI(urls[(w*104_729+i)%len(urls)])
	}
}

// editorAuthorization makes the development key of dir (and the JWKS
// file the APIs are started with) and returns the Authorization header of
// an editor's token signed with it.
func editorAuthorization(dir string) (string, error) {
	if err := auth.WriteDevJWKS(dir); err != nil {
		return "", err
	}
	k, err := auth.LoadDevKey(dir)
	if err != nil {
		return "", err
	}
	tok, err := k.Token(auth.Claims{Subject: "inkbench", Roles: []string{"editor"}, TTL: 7 * 24 * time.Hour})
	return "Bearer " + tok, err
}

// bodyTemplate splits an article body around its title's number.
func bodyTemplate(kind string) (prefix, suffix []byte) {
	b := articleBody(title(kind, 0)+"#", 0)
	i := bytes.Index(b, []byte("0#"))
	return b[:i], b[i+2:]
}

func writeBody(req *fasthttp.Request, authz string, prefix, suffix []byte, n int) {
	var num [20]byte
	req.Header.SetContentType("application/json")
	req.Header.Set(fasthttp.HeaderAuthorization, authz)
	req.AppendBody(prefix)
	req.AppendBody(strconv.AppendInt(num[:0], int64(n), 10))
	req.AppendBody(suffix)
}

// post creates a new article per request.
func post(addr, authz string) func(w, i int, req *fasthttp.Request) {
	url := "http://" + addr + "/api/articles"
	prefix, suffix := bodyTemplate("posted")
	return func(w, i int, req *fasthttp.Request) {
		req.Header.SetMethod(http.MethodPost)
		req.SetRequestURI(url)
		writeBody(req, authz, prefix, suffix, w*100_000_000+i)
	}
}

// put replaces articles with a new title each time; connection w updates
// only the articles whose index is w modulo conns, so connections never
// race for an article.
func put(addr string, ids []string, conns int, authz string) func(w, i int, req *fasthttp.Request) {
	owned := make([][]string, conns)
	for j, id := range ids {
		owned[j%conns] = append(owned[j%conns], "http://"+addr+"/api/articles/"+id)
	}
	prefix, suffix := bodyTemplate("updated")
	return func(w, i int, req *fasthttp.Request) {
		req.Header.SetMethod(http.MethodPut)
		req.SetRequestURI(owned[w][i%len(owned[w])])
		writeBody(req, authz, prefix, suffix, w*100_000_000+i+1)
	}
}

// seed creates n articles with conns connections and returns their ids.
func seed(ctx context.Context, addr string, n, conns int, authz string) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	build := post(addr, authz)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFor(addr, 1)
			defer c.CloseIdleConnections()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req.Reset()
				build(w, i, req)
				err := c.Do(req, resp)
				if err == nil && resp.StatusCode() != http.StatusCreated {
					err = fmt.Errorf("POST answered %d: %s", resp.StatusCode(), resp.Body())
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				loc := string(resp.Header.Peek("Location"))
				ids[i] = loc[strings.LastIndexByte(loc, '/')+1:]
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ids, nil
}

// fetchArticles GETs each article from the query API: the bytes the raw
// Fiber baseline serves.
func fetchArticles(ctx context.Context, addr string, ids []string) (map[string]json.RawMessage, error) {
	c := clientFor(addr, 1)
	defer c.CloseIdleConnections()
	out := make(map[string]json.RawMessage, len(ids))
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		req.Reset()
		req.SetRequestURI("http://" + addr + "/api/articles/" + id)
		if err := c.Do(req, resp); err != nil {
			return nil, fmt.Errorf("GET article %s: %w", id, err)
		}
		if resp.StatusCode() != http.StatusOK {
			return nil, fmt.Errorf("GET article %s: status %d: %s", id, resp.StatusCode(), resp.Body())
		}
		out[id] = json.RawMessage(bytes.Clone(resp.Body()))
	}
	return out, nil
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// metric reads a sample from a service's /metrics: the series of name
// whose labels are exactly labels (name, value pairs; none: unlabelled).
func metric(ctx context.Context, addr, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s/metrics: %w", addr, err)
	}
	for _, m := range families[name].GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.GetLabel() { // sorted by name, as labels must be
			match = match && l.GetName() == labels[2*i] && l.GetValue() == labels[2*i+1]
		}
		if match { // only the value of the family's type is set
			return m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("%s has no metric %s", addr, name)
}

// quiet is the log of the harness's own provisioning.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// replay times a projector folding cfg.ReplayEvents events into a fresh
// read model, then a query API starting on the bucket it made, on a fresh
// nats-server.
func (r *runner) replay(ctx context.Context, res *Result) error {
	c := r.cfg
	ns, url, conn, err := r.startNATS(ctx, "nats-server-replay", "store-replay")
	if err != nil {
		return err
	}
	defer conn.nc.Close()
	js := conn.js
	ncfg, err := natsDefaults(url)
	if err != nil {
		return err
	}
	// The stream, bucket and consumer exactly as the services provision them.
	resources, err := natsx.Provision(ctx, js, ncfg, quiet)
	if err != nil {
		return err
	}
	rp := &res.Replay
	rp.Events, rp.Articles = int64(c.ReplayEvents), int64(c.ColdArticles)
	r.logf("replay: publishing %d events of %d articles (no projector running)", c.ReplayEvents, c.ColdArticles)
	t := time.Now()
	pub := newProgress(c.Log, r.logf, "replay: publishing", "events", int64(c.ReplayEvents))
	last, err := publishHistory(ctx, js, c.ColdArticles, c.ReplayEvents, pub.set)
	pub.end()
	if err != nil {
		return fmt.Errorf("replay: publish: %w", err)
	}
	rp.PublishSeconds = time.Since(t).Seconds()
	r.logf("replay: published in %.1f s; starting a projector", rp.PublishSeconds)

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	started := time.Now()
	args := []string{"-nats-url", url, "-listen", addr}
	if c.Pprof {
		args = append(args, "-pprof")
	}
	proj, err := r.ps.start("projector-replay", c.bin("projector"), args...)
	if err != nil {
		return err
	}
	if c.Pprof {
		r.logf("projector-replay: pprof: http://%s/debug/pprof/", addr)
	}
	readyc := make(chan time.Duration, 1)
	go func() {
		took, _ := waitReady(ctx, proj, addr, started, 5*time.Millisecond, c.ReplayTimeout)
		readyc <- took
	}()
	folded := newProgress(c.Log, r.logf, "replay: projecting", "events", int64(last))
	at, floor, err := waitProjected(ctx, js, proj, last, 10*time.Millisecond, c.ReplayTimeout, folded.set)
	folded.end()
	switch {
	case errors.Is(err, procs.ErrTimeout):
		rp.TimedOut = true
		r.logf("replay: timed out after %s at %d of %d events acknowledged", c.ReplayTimeout, floor, last)
		at = time.Now()
	case err != nil:
		return fmt.Errorf("replay: %w", err)
	}
	rp.StartupSeconds = (<-readyc).Seconds()
	rp.Seconds = at.Sub(started).Seconds()
	rp.Acked = int64(floor)
	rp.EventsPerSec = float64(floor) / rp.Seconds
	r.logf("replay: %d events in %.2f s: %.0f events/s", floor, rp.Seconds, rp.EventsPerSec)
	r.ps.stop(proj, 10*time.Second)

	st, err := resources.KV.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket status: %w", err)
	}
	res.ColdStart.Articles = int64(st.Values())
	r.logf("cold start: query-api on %d articles in KV", st.Values())
	query, queryAddr, took, err := r.startService(ctx, "query-api-cold", "query-api", url)
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	res.ColdStart.Seconds = took.Seconds()
	n, err := metric(ctx, queryAddr, "inkstream_query_articles")
	if err != nil {
		return err
	}
	res.ColdStart.ViewArticles = int64(n)
	r.logf("cold start: ready in %s with %d articles in its view", took.Round(time.Millisecond), int64(n))
	r.ps.stop(query, 10*time.Second)
	r.ps.stop(ns, 10*time.Second)
	res.RSS = append(res.RSS, RSS{"nats-server (replay)", mib(ns)},
		RSS{fmt.Sprintf("projector (replay of %s events)", fmtInt(float64(c.ReplayEvents))), mib(proj)},
		RSS{fmt.Sprintf("query-api (cold start, %s articles)", fmtInt(float64(res.ColdStart.Articles))), mib(query)})
	return nil
}
