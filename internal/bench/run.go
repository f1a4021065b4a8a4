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
	"slices"
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
	// rebuildRSS is the peak RSS of the rebuild process, MiB.
	rebuildRSS float64
	// prof captures CPU profiles during the loads (-pprof; nil without).
	prof *profiler
}

// meter measures the CPU of ps during the load named load and, with
// -pprof, profiles them.
func (r *runner) meter(ctx context.Context, load string, ps ...*proc) *cpuMeter {
	m := newCPUMeter(ps...)
	if r.prof != nil {
		m.profile = func(d time.Duration) func() { return r.prof.span(ctx, load, d, ps...) }
	}
	return m
}

func (r *runner) run(ctx context.Context) (res Result, times []PartTime, err error) {
	r.dir, err = os.MkdirTemp("", "inkbench-")
	if err != nil {
		return res, nil, err
	}
	r.ps = newChildren(r.dir, r.logf, r.cfg.OnStart, r.cfg.ServiceEnv)
	if r.authz, err = editorAuthorization(r.dir); err != nil {
		return res, nil, err
	}
	defer func() {
		r.ps.stopAll(5 * time.Second)
		// The stores can take gigabytes; the logs stay when something
		// failed or misbehaved, unless the run was interrupted.
		stores, _ := filepath.Glob(filepath.Join(r.dir, "store-*"))
		for _, s := range stores {
			_ = os.RemoveAll(s)
		}
		switch {
		case err == nil && !r.ps.keepLogs(), errors.Is(err, context.Canceled):
			_ = os.RemoveAll(r.dir)
		case err == nil:
			r.logf("process logs kept in %s", r.dir)
		default:
			err = fmt.Errorf("%w\n(process logs kept in %s)", err, r.dir)
		}
	}()
	for _, part := range r.cfg.parts {
		began := time.Now()
		switch part {
		case partLoads:
			err = r.loads(ctx, &res.Loads, &res, false)
		case partReplay:
			err = r.replay(ctx, &res)
		case partMemory:
			err = r.memory(ctx, &res)
		case partCluster:
			err = r.loads(ctx, &res.Cluster, &res, true)
		}
		if err != nil {
			return res, nil, fmt.Errorf("%s: %w", part, err)
		}
		times = append(times, PartTime{Part: part, Seconds: time.Since(began).Seconds()})
		r.logf("%s: done in %s", part, time.Since(began).Round(time.Second))
	}
	res.ratios()
	return res, times, nil
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
	var url, pprofURL string
	p, _, err := r.startListening(name, r.cfg.bin("nats-server"), func(addr string) []string {
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", filepath.Join(r.dir, store), "-n", name}
		if r.cfg.Pprof {
			if prof, err := freeAddr(); err == nil {
				_, pport, _ := net.SplitHostPort(prof)
				args = append(args, "--profile", pport)
				pprofURL = "http://127.0.0.1:" + pport
				r.logf("%s: pprof: %s/debug/pprof/", name, pprofURL)
			}
		}
		return args
	}, func(p *proc, addr string, _ time.Time) error {
		p.pprofURL = pprofURL
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
// natsURL, with extra flags, and waits for its /readyz.
func (r *runner) startService(ctx context.Context, name, bin, natsURL string, extra ...string) (*proc, string, time.Duration, error) {
	var took time.Duration
	p, addr, err := r.startListening(name, r.cfg.bin(bin), func(addr string) []string {
		args := append([]string{"-nats-url", natsURL, "-listen", addr}, extra...)
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
		p.pprofURL = "http://" + addr
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

// loads runs the HTTP loads, their baselines, write → visible and the
// bulk creates against one nats-server, or with cluster against three at
// replicas 3, and the three services.
func (r *runner) loads(ctx context.Context, out *Loads, res *Result, cluster bool) error {
	c := r.cfg
	name, label := func(s string) string { return s }, func(s string) string { return s }
	loadsLabel := " (loads)"
	replicas := 1
	var servers []*proc
	var url string
	var conn *natsConn
	var err error
	if cluster {
		replicas = 3
		name = func(s string) string { return "cluster-" + s }
		label = func(s string) string { return s + " (cluster R3)" }
		loadsLabel = ""
		servers, url, conn, err = r.startCluster(ctx, "store-cluster")
	} else {
		var ns *proc
		ns, url, conn, err = r.startNATS(ctx, "nats-server", "store-loads")
		servers = []*proc{ns}
	}
	if err != nil {
		return err
	}
	defer conn.nc.Close()
	js := conn.js
	out.BulkSize = c.BulkSize
	ncfg, err := natsDefaults(url)
	if err != nil {
		return err
	}
	ncfg.StreamReplicas, ncfg.KVReplicas = replicas, replicas
	resources, err := provision(ctx, js, ncfg)
	if err != nil {
		return err
	}
	// The replicas the stream has, not those asked for.
	out.Replicas = resources.Stream.CachedInfo().Config.Replicas
	rep := []string{"-stream-replicas", strconv.Itoa(replicas), "-kv-replicas", strconv.Itoa(replicas)}
	cmd, cmdAddr, _, err := r.startService(ctx, name("command-api"), "command-api", url, rep...)
	if err != nil {
		return err
	}
	proj, _, _, err := r.startService(ctx, name("projector"), "projector", url, rep...)
	if err != nil {
		return err
	}
	query, queryAddr, _, err := r.startService(ctx, name("query-api"), "query-api", url, rep...)
	if err != nil {
		return err
	}
	all := append(slices.Clip(servers), cmd, proj, query)

	r.logf("seeding %d articles", c.SeedArticles)
	ids, err := seed(ctx, cmdAddr, c.SeedArticles, c.Conns, r.authz)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	out.Notes.SeedArticles = int64(len(ids))
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
	if out.RawFiber, out.Get, err = r.getVsRawFiber(ctx, ids, bodies, queryAddr, all, res, label("raw Fiber baseline")); err != nil {
		return err
	}
	after, err := metric(ctx, queryAddr, obs.MetricCacheMisses, "cache", "query_articles")
	if err != nil {
		return err
	}
	out.Notes.GetCacheMisses = int64(after - misses)
	list := "http://" + queryAddr + "/api/articles?limit=20"
	if out.List, err = r.load(ctx, "GET /api/articles?limit=20", "list", closedLoop{addr: queryAddr, want: http.StatusOK,
		build: func(_, _ int, req *fasthttp.Request) { req.SetRequestURI(list) }}, all...); err != nil {
		return err
	}

	// POST and PUT next to their baselines, in turns. The projector and
	// the query API fold the baselines' events too, as the writes'.
	if err := r.writes(ctx, out, js, cmdAddr, ids, all); err != nil {
		return err
	}
	took, err := r.settle(ctx, js, proj)
	if err != nil {
		return fmt.Errorf("after POST and PUT: %w", err)
	}
	out.Notes.WriteCatchUpMS = ms(took)

	rate := c.VisibilityRate
	if rate == 0 {
		rate = max(int(out.Put.RPS/2), 1)
	}
	r.logf("write → visible: %d writes/s (half the PUT rate, unless -visibility-rate) for %s", rate, c.Duration)
	replays, err := metric(ctx, queryAddr, "inkstream_query_replays_total")
	if err != nil {
		return err
	}
	profiled := r.prof.span(ctx, "write-visible", c.Duration, all...)
	out.Visibility, err = (visibilityLoad{commandAddr: cmdAddr, authz: r.authz, queryAddr: queryAddr, ids: ids, sample: max(rate/250, 1), rate: rate, duration: c.Duration,
		pollTimeout: 10 * time.Second, js: js, projector: proj}).run(ctx)
	out.Visibility.Asked = c.VisibilityRate != 0
	profiled()
	if err != nil {
		return fmt.Errorf("write → visible: %w", err)
	}
	after, err = metric(ctx, queryAddr, "inkstream_query_replays_total")
	if err != nil {
		return err
	}
	out.Visibility.ReplaysOnMiss = int64(after - replays)
	v := out.Visibility
	r.logf("write → visible: %.0f writes/s sent, p50 %s ms, p99 %s ms, max %s ms, %d errors", v.Achieved, fmtMS(v.P50), fmtMS(v.P99), fmtMS(v.Max), v.WriteErrors+v.PollErrors)
	if err := alive(all...); err != nil {
		return err
	}

	if err := r.bulk(ctx, out, js, cmdAddr, all); err != nil {
		return err
	}
	if took, err = r.settle(ctx, js, proj); err != nil {
		return fmt.Errorf("after the bulk creates: %w", err)
	}
	out.Notes.BulkCatchUpMS = ms(took)

	for _, p := range []*proc{cmd, query, proj} {
		r.ps.stop(p, 10*time.Second)
	}
	for i := len(servers) - 1; i >= 0; i-- {
		r.ps.stop(servers[i], 10*time.Second)
	}
	for _, ns := range servers {
		res.RSS = append(res.RSS, RSS{label(ns.Name), mib(ns)})
	}
	res.RSS = append(res.RSS, RSS{label("command-api"), mib(cmd)}, RSS{label("projector" + loadsLabel), mib(proj)}, RSS{label("query-api" + loadsLabel), mib(query)})
	return nil
}

// writes runs POST beside raw synchronous publishes of the create events,
// in turns, then PUT beside raw synchronous publishes of update events, in
// turns. (Not all four in turns: the POSTs' new articles would push the
// seeded ones out of the command API's cache before every PUT turn.)
func (r *runner) writes(ctx context.Context, out *Loads, js jetstream.JetStream, cmdAddr string, ids []string, all []*proc) error {
	c := r.cfg
	rawCreate := &publishLoop{js: js, conns: c.Conns, warmup: c.warmup(), duration: c.Duration, cpu: r.meter(ctx, "raw-publish-create", all...)}
	postLoop := &closedLoop{addr: cmdAddr, build: post(cmdAddr, r.authz), want: http.StatusCreated,
		conns: c.Conns, warmup: c.warmup(), duration: c.Duration, cpu: r.meter(ctx, "post", all...)}
	r.logf("baseline: raw sync JetStream publish of create events (%d publishers) and POST /api/articles (%d connections): %s warm-up + %s each, in %d turns",
		c.Conns, c.Conns, c.warmup(), c.Duration, turns)
	res, err := interleaved(ctx, turns, rawCreate, postLoop)
	if err != nil {
		return fmt.Errorf("raw publish and POST: %w", err)
	}
	if err := alive(all...); err != nil {
		return fmt.Errorf("raw publish and POST: %w", err)
	}
	out.RawPublish, out.Post = res[0], res[1]
	r.logf("baseline: raw sync publish of create events: %s", summary(out.RawPublish))
	r.logf("POST /api/articles: %s", summary(out.Post))

	r.logf("baseline: raw sync publish of update events: creating %d articles of its own", c.SeedArticles)
	rawUpdate, err := newUpdateLoop(ctx, js, c.Conns, c.SeedArticles)
	if err != nil {
		return fmt.Errorf("raw update publish: %w", err)
	}
	rawUpdate.warmup, rawUpdate.duration, rawUpdate.cpu = c.warmup(), c.Duration, r.meter(ctx, "raw-publish-update", all...)
	putLoop := &closedLoop{addr: cmdAddr, build: put(cmdAddr, ids, c.Conns, r.authz), want: http.StatusOK,
		conns: c.Conns, warmup: c.warmup(), duration: c.Duration, cpu: r.meter(ctx, "put", all...)}
	// The POSTs' new articles have pushed the seeded ones out of the
	// command API's cache: the first PUT of each reads its history from
	// the stream. That pass is a figure of its own; the PUT load after it
	// is the steady state.
	misses, err := metric(ctx, cmdAddr, obs.MetricCacheMisses, "cache", "command_states")
	if err != nil {
		return err
	}
	r.logf("PUT /api/articles/{id}: the first of each of the %d seeded articles (%d connections)", len(ids), c.Conns)
	stopProfiles := r.prof.during(ctx, "put-first", all...)
	out.PutCold, err = onePass(ctx, cmdAddr, len(ids), c.Conns, putLoop.build, http.StatusOK, newCPUMeter(all...))
	stopProfiles()
	if err != nil {
		return fmt.Errorf("first PUTs: %w", err)
	}
	after, err := metric(ctx, cmdAddr, obs.MetricCacheMisses, "cache", "command_states")
	if err != nil {
		return err
	}
	out.Notes.PutStateMisses = int64(after - misses)
	r.logf("PUT /api/articles/{id}, first of each: %s (%d states not in the command API's cache)", summary(out.PutCold), out.Notes.PutStateMisses)
	r.logf("baseline: raw sync JetStream publish of update events (%d publishers) and PUT /api/articles/{id} (%d connections): %s warm-up + %s each, in %d turns",
		c.Conns, c.Conns, c.warmup(), c.Duration, turns)
	if res, err = interleaved(ctx, turns, rawUpdate, putLoop); err != nil {
		return fmt.Errorf("raw publish and PUT: %w", err)
	}
	if err := alive(all...); err != nil {
		return fmt.Errorf("raw publish and PUT: %w", err)
	}
	misses = after
	if after, err = metric(ctx, cmdAddr, obs.MetricCacheMisses, "cache", "command_states"); err != nil {
		return err
	}
	out.Notes.PutLoadMisses = int64(after - misses)
	out.RawUpdate, out.Put = res[0], res[1]
	r.logf("baseline: raw sync publish of update events: %s", summary(out.RawUpdate))
	r.logf("PUT /api/articles/{id}: %s (%d states not in the command API's cache)", summary(out.Put), out.Notes.PutLoadMisses)
	return nil
}

// onePass sends n requests from conns connections, request i of worker w
// built by build(w, firstPass+i, req) for each i with w+i*conns < n: once
// each of n articles, when build picks them that way (put does). It
// returns them as a load.
func onePass(ctx context.Context, addr string, n, conns int, build func(w, i int, req *fasthttp.Request), want int, cpu *cpuMeter) (Load, error) {
	var mu sync.Mutex
	var results []workerResult
	start := time.Now()
	cpu.begin()
	eachWorker(addr, conns, func(w int, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) {
		r := workerResult{kinds: errorKinds{}}
		for i := 0; w+i*conns < n && ctx.Err() == nil; i++ {
			req.Reset()
			resp.Reset()
			build(w, firstPass+i, req)
			t0 := time.Now()
			err := c.Do(req, resp)
			took := time.Since(t0)
			switch {
			case err != nil:
				r.errors++
				r.kinds.add("transport: " + err.Error())
			case resp.StatusCode() != want:
				r.errors++
				r.kinds.add(statusKind(resp.StatusCode()))
			default:
				r.lat = append(r.lat, took)
			}
		}
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	if err := ctx.Err(); err != nil {
		return Load{}, err
	}
	out := merge(results, time.Since(start))
	out.CPU = cpu.end(out.RPS)
	return out, nil
}

// firstPass numbers the requests of onePass, apart from the loads': a PUT
// of the pass never repeats the title of a later one (which would change
// nothing and write no event).
const firstPass = 90_000_000

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
// and checks that the processes survived it; profile names its profiles.
func (r *runner) load(ctx context.Context, name, profile string, l closedLoop, procs ...*proc) (Load, error) {
	l.conns, l.warmup, l.duration = r.cfg.Conns, r.cfg.warmup(), r.cfg.Duration
	l.cpu = r.meter(ctx, profile, procs...)
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
// same load, in turns (interleaved). label names the baseline's peak RSS.
func (r *runner) getVsRawFiber(ctx context.Context, ids []string, bodies map[string]json.RawMessage, queryAddr string, all []*proc, res *Result, label string) (raw, get Load, err error) {
	data := filepath.Join(r.dir, fileName(label)+".json")
	b, err := json.Marshal(bodies)
	if err != nil {
		return raw, get, err
	}
	if err := os.WriteFile(data, b, 0o644); err != nil {
		return raw, get, err
	}
	p, addr, err := r.startListening(fileName(label), r.cfg.bin("inkbench"), func(addr string) []string {
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
		res.RSS = append(res.RSS, RSS{label, mib(p)})
	}()
	c := r.cfg
	loops := []*closedLoop{
		{addr: addr, build: getByID(addr, ids), want: http.StatusOK, cpu: newCPUMeter(p)},
		{addr: queryAddr, build: getByID(queryAddr, ids), want: http.StatusOK, cpu: r.meter(ctx, "get-cached", all...)},
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

// fileName turns a label into a file name: lower case, dashes.
func fileName(label string) string {
	f := strings.FieldsFunc(strings.ToLower(label), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	return strings.Join(f, "-")
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
	tok, err := k.Token(auth.Claims{Subject: actor, Roles: []string{"editor"}, TTL: 7 * 24 * time.Hour})
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
	build := post(addr, authz)
	eachWorker(addr, conns, func(w int, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) {
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
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ids, nil
}

// eachWorker runs work for workers 0 to conns-1 at once, each with a
// connection of its own to addr and a request and response to reuse, and
// waits for them all.
func eachWorker(addr string, conns int, work func(w int, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response)) {
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFor(addr, 1)
			defer c.CloseIdleConnections()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			work(w, c, req, resp)
		}()
	}
	wg.Wait()
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
// read model, then `inkstream rebuild` folding them again, then a query API
// starting on the bucket they made, on a fresh nats-server; last, what the
// stream takes on disk with S2 and without.
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
	resources, err := provision(ctx, js, ncfg)
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
	r.logf("replay: published in %.1f s (%.0f events/s); starting a projector", rp.PublishSeconds, rp.publishRate())

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"-nats-url", url, "-listen", addr}
	if c.Pprof {
		args = append(args, "-pprof")
	}
	started := time.Now()
	proj, err := r.ps.start("projector-replay", c.bin("projector"), args...)
	if err != nil {
		return err
	}
	if c.Pprof {
		proj.pprofURL = "http://" + addr
		r.logf("projector-replay: pprof: http://%s/debug/pprof/", addr)
	}
	cpu := newCPUMeter(ns, proj)
	cpu.begin()
	stopProfiles := r.prof.during(ctx, "projector-catch-up", ns, proj)
	readyc := make(chan time.Duration, 1)
	go func() {
		took, _ := waitReady(ctx, proj, addr, started, 5*time.Millisecond, c.ReplayTimeout)
		readyc <- took
	}()
	folded := newProgress(c.Log, r.logf, "replay: projecting", "events", int64(last))
	at, floor, err := waitProjected(ctx, js, proj, last, 10*time.Millisecond, c.ReplayTimeout, folded.set)
	folded.end()
	stopProfiles()
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
	rp.CPU = cpu.end(rp.EventsPerSec)
	r.logf("replay: %d events in %.2f s: %.0f events/s", floor, rp.Seconds, rp.EventsPerSec)
	r.ps.stop(proj, 10*time.Second)

	if err := r.rebuild(ctx, res, ns, url, resources); err != nil {
		return err
	}

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

	if res.Disk, err = r.disk(ctx, js, ns, "store-replay"); err != nil {
		return fmt.Errorf("bytes on disk: %w", err)
	}
	r.ps.stop(ns, 10*time.Second)
	res.RSS = append(res.RSS, RSS{"nats-server (replay)", mib(ns)},
		RSS{fmt.Sprintf("projector (catch-up of %s events)", fmtInt(float64(c.ReplayEvents))), mib(proj)},
		RSS{fmt.Sprintf("inkstream rebuild (%s events)", fmtInt(float64(c.ReplayEvents))), r.rebuildRSS},
		RSS{fmt.Sprintf("query-api (cold start, %s articles)", fmtInt(float64(res.ColdStart.Articles))), mib(query)})
	return nil
}
