package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/valyala/fasthttp"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the services, inkbench and nats-server once per test
// binary, without -race whatever the test runs with.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "inkbench-test-bin-")
		if buildErr != nil {
			return
		}
		for _, args := range [][]string{
			{"build", "-o", binDir + string(filepath.Separator), "./cmd/..."},
			{"build", "-o", filepath.Join(binDir, "nats-server"), "github.com/nats-io/nats-server/v2"},
		} {
			cmd := exec.Command("go", args...)
			cmd.Dir = filepath.Join("..", "..")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.Join(err, errors.New(string(out)))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tiny is a configuration that exercises every part of the harness in
// about half a minute. Its figures mean nothing.
func tiny(t *testing.T, pids *[]int, mu *sync.Mutex) Config {
	return Config{
		BinDir: binaries(t), OutDir: t.TempDir(), Runs: 1, Duration: time.Second, Conns: 64,
		SeedArticles: 200, ReplayEvents: 10_000, ColdArticles: 2_000, ReplayTimeout: time.Minute,
		BulkConns: 2, BulkSize: 200, MemoryArticles: []int{1_000, 3_000}, ContentBytes: 5000,
		Command: "go test ./internal/bench", Log: t.Output(),
		OnStart: func(_ string, pid int) {
			mu.Lock()
			*pids = append(*pids, pid)
			mu.Unlock()
		},
	}
}

// assertAllStopped fails for every started process that still exists.
func assertAllStopped(t *testing.T, pids []int) {
	t.Helper()
	if len(pids) == 0 {
		t.Fatal("no process was started")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Run returned (kill 0: %v)", pid, err)
		}
	}
}

// runTiny runs the parts only names in the tiny mode and checks that every
// process it started is gone. It returns the report, the configuration,
// the path of the results without extension and what Run printed.
func runTiny(t *testing.T, only string) (*Report, Config, string, []byte) {
	t.Helper()
	var pids []int
	var mu sync.Mutex
	cfg := tiny(t, &pids, &mu)
	cfg.Only = only
	var out bytes.Buffer
	cfg.Out = &out
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertAllStopped(t, pids)
	files, _ := filepath.Glob(filepath.Join(cfg.OutDir, "*.md"))
	if len(files) != 1 {
		t.Fatalf("wrote %v, want the .md of the run", files)
	}
	return rep, cfg, strings.TrimSuffix(files[0], ".md"), out.Bytes()
}

// TestShortBench runs the whole harness in a tiny mode so it cannot rot: it
// asserts the table has every row and the JSON results parse, and nothing
// about performance.
func TestShortBench(t *testing.T) {
	rep, cfg, results, out := runTiny(t, "")

	// The results are named for the run's start time, the charts beside them.
	charts := []string{"latency-reads", "latency-writes", "ratios", "memory"}
	want := []string{results + ".json", results + ".md"}
	for _, c := range charts {
		want = append(want, results+"-"+c+".svg")
	}
	all, _ := filepath.Glob(filepath.Join(cfg.OutDir, "*"))
	slices.Sort(all)
	slices.Sort(want)
	if _, err := time.Parse("20060102T150405Z", filepath.Base(results)); err != nil || !slices.Equal(all, want) {
		t.Errorf("wrote %v, want <UTC start time>.md and .json and the charts %v", all, want)
	}
	md, err := os.ReadFile(results + ".md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(md, out) {
		t.Error("the printed table differs from the .md file")
	}
	for _, want := range []string{
		"- date: ", "- go version: go", "- CPU: ", "- command: `go test ./internal/bench`", "- load average (1, 5, 15 min) at the start: ", "other processes on the machine used ",
		"(loads ", ", replay ",
		"| baseline: raw Fiber GET by id from a map, 64 conns |",
		"| GET /api/articles/{id} (cached), 64 conns |",
		"| GET /api/articles?limit=20, 64 conns |",
		"| baseline: raw sync JetStream publish of the create events, 64 publishers |",
		"| POST /api/articles, 64 conns |",
		"| baseline: raw sync JetStream publish of the update events, 64 publishers |",
		"| PUT /api/articles/{id}, 64 conns |",
		"| PUT /api/articles/{id}: the first of each of 200 articles after the POST load (state outside the command API's cache), 64 conns |",
		"| write → visible in query API at ",
		"| baseline: raw atomic batch publish of 200 create events, 2 publishers |",
		"| POST /api/articles/_bulk of 200 articles, 2 conns |",
		"| baseline: async publish of the same 10 000 events to the same server, beforehand |",
		"| `inkstream rebuild` of 10 000 events (2 000 articles) |",
		"| projector catch-up of 10 000 events (2 000 articles) |",
		"| query-api cold start, 2 000 articles in KV |",
		"| stream on disk, S2 (the default), 10 000 events |", "| stream on disk, no compression, the same 10 000 events |",
		"| peak RSS: raw Fiber baseline |", "| peak RSS: nats-server |", "| peak RSS: command-api |",
		"| peak RSS: projector (loads) |", "| peak RSS: query-api (loads) |", "| peak RSS: nats-server (replay) |",
		"| peak RSS: projector (catch-up of 10 000 events) |", "| peak RSS: inkstream rebuild (10 000 events) |",
		"| peak RSS: query-api (cold start, 2 000 articles) |",
		"| cached GET | ≥ 0.95× raw Fiber and p99 ≤ 1.2× raw Fiber's p99 |",
		"| POST | ≥ 0.8× raw sync JetStream publish and ≥ 10 000/s |", "| PUT | ≥ 0.8× raw sync JetStream publish and ≥ 10 000/s |",
		"| write → visible | p99 ≤ 20 ms and p50 ≤ 3 ms at half the PUT rate (",
		"| bulk create | ≥ 0.5× raw atomic batch publish |",
		"| rebuild | ≥ 2× async publish of the same events |", "| projector catch-up | ≥ 1× async publish of the same events |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
	for _, c := range charts {
		svg := results + "-" + c + ".svg"
		if !strings.Contains(string(md), "]("+filepath.Base(svg)+")") {
			t.Errorf("results.md does not show %s", filepath.Base(svg))
		}
		checkSVG(t, svg, map[string][]string{
			"latency-reads":  {"raw Fiber GET (baseline)", "cached GET /api/articles/{id}", "99.9%", "max"},
			"latency-writes": {"raw publish of the creates (baseline)", "POST /api/articles", "raw publish of the updates (baseline)", "PUT /api/articles/{id}", "write → visible at "},
			"ratios":         {"cached GET", "POST", "PUT", "bulk", "catch-up", "rebuild", "target"},
			"memory":         {"command-api (", "query-api (cold start, 2 000 articles) (", "inkstream rebuild (10 000 events) ("},
		}[c]...)
	}
	if t.Failed() {
		t.Logf("results.md:\n%s", md)
	}

	raw, err := os.ReadFile(results + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(got.Runs) != 1 || len(got.Targets) != 7 || got.Meta.Mode != "custom" || got.Meta.ReplayEvents != 10_000 || len(got.Meta.PartSeconds) != 2 {
		t.Errorf("results.json: %d runs, %d targets, mode %q, %d replay events, part times %v", len(got.Runs), len(got.Targets), got.Meta.Mode, got.Meta.ReplayEvents, got.Meta.PartSeconds)
	}
	m := got.Median
	for name, l := range map[string]Load{"raw Fiber": m.RawFiber, "GET": m.Get, "list": m.List, "raw publish": m.RawPublish, "POST": m.Post,
		"raw update": m.RawUpdate, "PUT": m.Put, "first PUTs": m.PutCold, "raw batch": m.RawBatch, "bulk": m.Bulk} {
		if l.Requests == 0 || l.Seconds == 0 || l.Errors != 0 {
			t.Errorf("%s load made no successful requests, or errors: %+v", name, l)
		}
	}
	if v := m.Visibility; v.Visible == 0 || v.Rate != max(int(m.Put.RPS/2), 1) {
		t.Errorf("visibility %+v: want writes at half the PUT rate %.0f/s", v, m.Put.RPS)
	}
	if m.Replay.Acked == 0 || m.ColdStart.Articles == 0 || len(m.RSS) != 9 {
		t.Errorf("replay %+v, cold start %+v, %d RSS figures", m.Replay, m.ColdStart, len(m.RSS))
	}
	if rb := m.Rebuild; rb.Events != 10_000 || rb.EventsPerSec <= 0 || rb.Snapshots != 2_000 || !strings.Contains(rb.Summary, "events folded into 2000 snapshots") || len(rb.CPU) != 3 {
		t.Errorf("rebuild %+v", rb)
	}
	if d := m.Disk; d.Events != 10_000 || d.S2Bytes <= 0 || d.NoneBytes <= d.S2Bytes || d.StoredBytes <= 0 {
		t.Errorf("bytes on disk %+v: want the compressed stream smaller", d)
	}
	for name, l := range map[string]Load{"raw Fiber": m.RawFiber, "GET": m.Get, "raw publish": m.RawPublish, "POST": m.Post, "PUT": m.Put, "bulk": m.Bulk} {
		var cores float64
		for _, c := range l.CPU {
			cores += c.Cores
		}
		if want := map[string]int{"raw Fiber": 2}[name]; (want == 0 && len(l.CPU) != 5) || (want != 0 && len(l.CPU) != want) || cores <= 0 {
			t.Errorf("%s: CPU %+v; want the load generator and each process under load, some CPU used", name, l.CPU)
		}
	}
	for _, p := range m.RSS {
		if p.MiB <= 0 {
			t.Errorf("no peak RSS for %s", p.Process)
		}
	}
	for name, l := range map[string]Load{"GET": m.Get, "POST": m.Post} {
		if len(l.Dist) != len(distQuantiles) || l.Dist[2].Q != 0.5 || l.Dist[2].MS != l.P50 || l.Dist[6].MS != l.P99 {
			t.Errorf("%s: latency distribution %+v, p50 %v, p99 %v", name, l.Dist, l.P50, l.P99)
		}
	}
	if rep.Median.Ratios != got.Median.Ratios || got.Median.Ratios.PutVsRawUpdate <= 0 || got.Median.Ratios.RebuildVsPublish <= 0 || got.Median.Ratios.BulkVsRawBatch <= 0 {
		t.Errorf("returned ratios %+v, written %+v", rep.Median.Ratios, got.Median.Ratios)
	}
}

// TestMemoryAndCluster runs the two parts of their own in a tiny mode: the
// query API on buckets of 1 000 and 3 000 articles filled directly, and the
// loads on a 3-node cluster at replicas 3.
func TestMemoryAndCluster(t *testing.T) {
	rep, _, base, md := runTiny(t, "memory,cluster")
	for _, want := range []string{
		"- mode: custom, memory, cluster only;",
		"| query API, 1 000 articles of 5 000 bytes in KV: peak RSS |", "| query API, 1 000 articles: cold start to /readyz |",
		"| query API, 1 000 articles: baseline raw Fiber GET, 64 conns |", "| query API, 1 000 articles: GET /api/articles/{id} (cached) |",
		"| query API, 3 000 articles: memory | peak RSS ≤ 1 024 MiB |", "| query API, 3 000 articles: cold start | to /readyz ≤ 10 s |",
		"| query API, 3 000 articles: cached GET | ≥ 0.95× raw Fiber",
		"| cluster R3: baseline: raw sync JetStream publish of the create events, 64 publishers |", "| cluster R3: POST /api/articles, 64 conns |",
		"| cluster R3: PUT /api/articles/{id}, 64 conns |", "| cluster R3: GET /api/articles/{id} (cached), 64 conns |",
		"| cluster R3: POST /api/articles/_bulk of 200 articles, 2 conns |",
		"| peak RSS: nats-1 (cluster R3) |", "| peak RSS: nats-3 (cluster R3) |", "| peak RSS: query-api (3 000 articles of 5 000 bytes) |",
		"- Memory: the bucket is filled directly with the snapshots the projector would write",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
	for _, not := range []string{"| POST | ", "projector catch-up", "| PUT /api/articles/{id}, 64 conns |"} {
		if strings.Contains(string(md), not) {
			t.Errorf("results.md has %q, of a part that did not run", not)
		}
	}
	checkSVG(t, base+"-cluster-latency-writes.svg", "POST /api/articles", "raw publish of the creates (baseline)")
	checkSVG(t, base+"-ratios.svg", "R3: POST", "GET, 3k")
	if t.Failed() {
		t.Logf("results.md:\n%s", md)
	}
	m := rep.Median
	if len(m.Memory) != 2 || len(rep.Targets) != 3 {
		t.Fatalf("%d memory rows, %d targets", len(m.Memory), len(rep.Targets))
	}
	for i, mm := range m.Memory {
		if want := int64([]int{1_000, 3_000}[i]); mm.Articles != want || mm.ViewArticles != want || mm.ColdStartSeconds <= 0 || mm.PeakRSSMiB <= 0 ||
			mm.BucketBytes < want*5000 || mm.Get.Requests == 0 || mm.Get.Errors != 0 || mm.RawFiber.Requests == 0 || mm.GetVsRawFiber <= 0 {
			t.Errorf("memory row %d: %+v", i, mm)
		}
	}
	c := m.Cluster
	if c.Replicas != 3 {
		t.Errorf("cluster: stream replicas %d, want 3", c.Replicas)
	}
	for name, l := range map[string]Load{"raw publish": c.RawPublish, "POST": c.Post, "raw update": c.RawUpdate, "PUT": c.Put, "GET": c.Get, "bulk": c.Bulk} {
		if l.Requests == 0 || l.Errors != 0 {
			t.Errorf("cluster %s: %+v", name, l)
		}
	}
	if m.Ratios.ClusterPost <= 0 || m.Ratios.ClusterPut <= 0 || m.Ratios.ClusterGet <= 0 {
		t.Errorf("cluster ratios %+v", m.Ratios)
	}
}

// TestInterruptStopsEveryProcess cancels a run while it starts the
// services, as Ctrl-C does: Run must return at once, with every process it
// started stopped and its temporary directory gone.
func TestInterruptStopsEveryProcess(t *testing.T) {
	binaries(t) // before TMPDIR changes
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var pids []int
	var mu sync.Mutex
	cfg := tiny(t, &pids, &mu)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := cfg.OnStart
	cfg.OnStart = func(name string, pid int) {
		started(name, pid)
		if name == "query-api" {
			cancel()
		}
	}
	begin := time.Now()
	_, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: want context.Canceled, got %v", err)
	}
	if took := time.Since(begin); took > 30*time.Second {
		t.Errorf("Run took %s to return after cancel", took)
	}
	assertAllStopped(t, pids)
	if len(pids) != 4 {
		t.Errorf("started %d processes before the cancel, want 4 (nats-server, command-api, projector, query-api)", len(pids))
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("temporary files left after an interrupted run: %v", left)
	}
}

func TestFlags(t *testing.T) {
	if err := Main(t.Context(), []string{"-h"}, noEnv, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	err := Main(t.Context(), []string{"-bin", t.TempDir(), "-runs", "0"}, noEnv, io.Discard, io.Discard)
	for _, want := range []string{"-runs must be at least 1", "nats-server is missing from", "run `make build`"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad flags: want an error with %q, got %v", want, err)
		}
	}
	if err := Main(t.Context(), []string{"extra"}, noEnv, io.Discard, io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
}

func TestMedian(t *testing.T) {
	run := func(rps, p99 float64, errs int64, timedOut bool, rss float64) Result {
		r := Result{Loads: Loads{Get: Load{RPS: rps, Errors: errs, Latency: Latency{P99: p99}}, RawFiber: Load{RPS: 100}},
			Replay: Replay{TimedOut: timedOut}, RSS: []RSS{{"a", rss}, {"b", 2 * rss}}}
		r.ratios()
		return r
	}
	m := median([]Result{run(90, 3, 0, false, 10), run(70, 9, 5, true, 30), run(80, 4, 1, false, 20)})
	if m.Get.RPS != 80 || m.Get.P99 != 4 || m.Get.Errors != 1 || m.Ratios.GetVsRawFiber != 0.8 {
		t.Errorf("median GET %+v, ratio %v", m.Get, m.Ratios.GetVsRawFiber)
	}
	if !m.Replay.TimedOut {
		t.Error("a run that timed out must show in the median")
	}
	if len(m.RSS) != 2 || m.RSS[0] != (RSS{"a", 20}) || m.RSS[1] != (RSS{"b", 40}) {
		t.Errorf("median RSS %+v", m.RSS)
	}
	if got := median([]Result{run(1, 1, 0, false, 1), run(3, 3, 0, false, 3)}); got.Get.RPS != 2 {
		t.Errorf("median of two: %v, want 2", got.Get.RPS)
	}
}

// TestReplayVsPublish checks the replay's baseline: the rate of the
// asynchronous publish of the same events, its ratio per run, the median of
// those ratios, and both in the table.
func TestReplayVsPublish(t *testing.T) {
	run := func(replayRate, publishSeconds float64) Result {
		r := Result{Replay: Replay{Events: 1_000_000, PublishSeconds: publishSeconds, EventsPerSec: replayRate},
			Rebuild: Rebuild{Events: 1_000_000, EventsPerSec: 3 * replayRate}}
		r.ratios()
		return r
	}
	// 0.6, 0.75 and 0.5 of 40 000, 20 000 and 50 000 events/s; the
	// rebuild thrice that, but it failed in the second run.
	runs := []Result{run(24_000, 25), run(15_000, 50), run(25_000, 20)}
	runs[1].Rebuild = Rebuild{Events: 1_000_000, Seconds: 4.5, Failed: true, Error: "exit status 1: nats: stalled"}
	runs[1].ratios()
	m := median(runs)
	if m.Ratios.ReplayVsPublish != 0.6 {
		t.Errorf("median replay ratio %v, want 0.6", m.Ratios.ReplayVsPublish)
	}
	meta := Meta{Only: "replay", Parts: []string{partReplay}, Mode: "full, replay only", Runs: 3}
	md := markdown(Report{Meta: meta, Median: m, Targets: judged(m, meta), Runs: runs})
	for _, want := range []string{
		"| rebuild | ≥ 2× async publish of the same events | 1.50× async publish, 72 000 events/s over 1 000 000 events; it failed in a run (see the notes) | FAIL |",
		"- run 2: `inkstream rebuild` failed after 4.5 s: `exit status 1: nats: stalled`",
		"| baseline: async publish of the same 1 000 000 events to the same server, beforehand | 40 000 events/s |",
		"| 24 000 events/s |", "| 0.60× async publish |", "| projector catch-up | ≥ 1× async publish of the same events | 0.60× async publish, 24 000 events/s over 1 000 000 events | FAIL |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("%q missing from\n%s", want, md)
		}
	}
}

// TestOnlyOnePart checks -only: a bad value is refused, several parts and
// all are taken, and the report of some parts neither shows nor judges the
// others.
func TestOnlyOnePart(t *testing.T) {
	err := Main(t.Context(), []string{"-bin", t.TempDir(), "-only", "post"}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `-only "post": want loads, replay, memory, cluster or all`) {
		t.Errorf("-only post: %v", err)
	}
	for only, want := range map[string][]string{
		"": {"loads", "replay"}, "replay": {"replay"}, "cluster, memory": {"memory", "cluster"}, "all": {"loads", "replay", "memory", "cluster"},
	} {
		got, err := parts(only)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parts(%q) = %v, %v; want %v", only, got, err, want)
		}
	}
	m := Result{Loads: Loads{Post: Load{RPS: 10}, RawPublish: Load{RPS: 20}}, Replay: Replay{Events: 1000, EventsPerSec: 500},
		Memory: []Memory{{Articles: 1000, PeakRSSMiB: 100, ColdStartSeconds: 1}}}
	m.ratios()
	for _, tc := range []struct {
		parts       []string
		targets     int
		show, leave []string
	}{
		{[]string{partReplay}, 2, []string{"projector catch-up of 1 000 events", "query-api cold start", "- catch-up: "}, []string{"POST /api/articles", "raw Fiber", "- write → visible", "query API, 1 000"}},
		{[]string{partLoads}, 5, []string{"POST /api/articles", "raw Fiber", "write → visible in query API", "- cached GET"}, []string{"projector catch-up", "cold start", "- catch-up: "}},
		{[]string{partMemory}, 3, []string{"| query API, 1 000 articles: memory | peak RSS ≤ 1 024 MiB | 100 MiB | PASS |", "- memory, 1 000 articles"}, []string{"POST /api/articles", "catch-up"}},
		{defaultParts, 7, []string{"POST /api/articles", "projector catch-up"}, []string{"query API, 1 000"}},
	} {
		cfg := Config{Duration: 10 * time.Second, parts: tc.parts}
		meta := Meta{Mode: cfg.mode(), Parts: tc.parts, Connections: 64}
		ts := judged(m, meta)
		if len(ts) != tc.targets {
			t.Errorf("parts %v: %d targets judged, want %d", tc.parts, len(ts), tc.targets)
		}
		md := markdown(Report{Meta: meta, Median: m, Targets: ts})
		only := ""
		if !slices.Equal(tc.parts, defaultParts) {
			only = ", " + strings.Join(tc.parts, ", ") + " only"
		}
		if !strings.Contains(md, "- mode: custom"+only+";") {
			t.Errorf("parts %v: mode line missing in\n%s", tc.parts, md)
		}
		for _, want := range tc.show {
			if !strings.Contains(md, want) {
				t.Errorf("parts %v: %q missing from\n%s", tc.parts, want, md)
			}
		}
		for _, not := range tc.leave {
			if strings.Contains(md, not) {
				t.Errorf("parts %v: %q should not be in\n%s", tc.parts, not, md)
			}
		}
	}
}

// TestPublishNames checks where -publish writes: bench/results for the
// plain run, bench/results-<parts> for -only.
func TestPublishNames(t *testing.T) {
	for only, want := range map[string]string{"": "results", "loads,replay": "results", "memory": "results-memory", "cluster": "results-cluster", "all": "results-loads-replay-memory-cluster"} {
		c := Config{Publish: true, Only: only, BinDir: t.TempDir()}
		_ = c.defaults() // the binaries are missing; the names are set all the same
		if c.OutDir != "./bench" || c.Name != want {
			t.Errorf("-publish -only %q: %s/%s, want ./bench/%s", only, c.OutDir, c.Name, want)
		}
	}
}

// TestCPUTime checks the /proc reading the CPU split rests on: a busy
// loop makes this process's CPU time grow, and by no more than the wall
// time it ran times the cores.
func TestCPUTime(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatalf("cpuTime: %v", err)
	}
	spin := time.Now()
	for {
		now, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if grew := now - before; grew >= 100*time.Millisecond {
			if wall := time.Since(spin); grew > wall*time.Duration(runtime.NumCPU())+2*clockTick {
				t.Errorf("CPU time grew by %s in %s of wall time on %d cores", grew, wall, runtime.NumCPU())
			}
			return
		}
		if time.Since(spin) > 20*time.Second {
			t.Fatalf("CPU time grew by only %s in 20s of busy loop", now-before)
		}
	}
}

// TestIOCalls checks the /proc reading behind the system calls per
// request: 200 writes to a file add at least 200 to this process's count.
func TestIOCalls(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := ioCalls(os.Getpid())
	if err != nil {
		t.Fatalf("ioCalls: %v", err)
	}
	for range 200 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	after, err := ioCalls(os.Getpid())
	if err != nil {
		t.Fatalf("ioCalls: %v", err)
	}
	if after-before < 200 {
		t.Errorf("read and write system calls grew by %d over 200 writes", after-before)
	}
}

// TestInterleavedTakesTurns runs two loads against two servers in three
// turns and checks from the servers' side that the measured slices
// alternated, A B A B A B, after each one's warm-up.
func TestInterleavedTakesTurns(t *testing.T) {
	var mu sync.Mutex
	var order []string // server of each request, in arrival order
	server := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			if len(order) == 0 || order[len(order)-1] != name {
				order = append(order, name)
			}
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	a, b := server("A"), server("B")
	loop := func(addr string) *closedLoop {
		return &closedLoop{addr: addr, conns: 2, warmup: 50 * time.Millisecond, duration: 600 * time.Millisecond, want: http.StatusOK,
			build: func(_, _ int, req *fasthttp.Request) { req.SetRequestURI("http://" + addr + "/") }}
	}
	out, err := interleaved(t.Context(), 3, loop(a), loop(b))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Warm-ups A then B, then three rounds of A, B: the server of the
	// requests changes seven times.
	if want := "ABABABAB"; strings.Join(order, "") != want {
		t.Errorf("requests went to %s, want runs %s", strings.Join(order, ""), want)
	}
	for i, l := range out {
		if l.Requests == 0 || l.Seconds < 0.5 || l.Seconds > 5 {
			t.Errorf("load %d: %d requests over %.2f s, want some over about 0.6 s", i, l.Requests, l.Seconds)
		}
	}
}

// noEnv is an environment without variables.
func noEnv(string) string { return "" }

// checkSVG fails unless path is a well-formed SVG document whose text holds
// each of texts.
func checkSVG(tb testing.TB, path string, texts ...string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var root string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if root != "svg" {
		tb.Errorf("%s: root element %q, want svg", path, root)
	}
	for _, want := range texts {
		if !strings.Contains(text.String(), want) {
			tb.Errorf("%s does not show %q", filepath.Base(path), want)
		}
	}
}

// TestRedrawPublishedResults draws the charts of the published results
// again (the .json of a run from before the charts, without latency
// distributions) into a copy, and checks the .md shows them.
func TestRedrawPublishedResults(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "bench", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "results.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Main(t.Context(), []string{"-redraw", file}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !bytes.Equal(md, out.Bytes()) {
		t.Fatalf("results.md (%v) differs from what was printed", err)
	}
	for _, c := range []string{"latency-reads", "latency-writes", "ratios", "memory"} {
		if !strings.Contains(string(md), "](results-"+c+".svg)") {
			t.Errorf("results.md does not show results-%s.svg", c)
		}
		checkSVG(t, filepath.Join(dir, "results-"+c+".svg"))
	}
}

// TestPprofProfiles runs the loads part with -pprof and loads long enough
// for a one-second profile per slice, and checks the CPU profiles of the
// POST load (command-api's and nats-server's parse and have samples), the
// README of their top functions and the results' note on them.
func TestPprofProfiles(t *testing.T) {
	var pids []int
	var mu sync.Mutex
	cfg := tiny(t, &pids, &mu)
	cfg.Only, cfg.Pprof, cfg.Name = partLoads, true, "run"
	cfg.Duration = 5 * time.Second // slices of 1.25 s in turns: a 1 s profile each
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	assertAllStopped(t, pids)
	dir := filepath.Join(cfg.OutDir, "run-profiles")
	for _, name := range []string{"command-api", "nats-server"} {
		f, err := os.Open(filepath.Join(dir, "post", name+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("post/%s.pprof: %v", name, err)
		}
		if len(p.Sample) == 0 || p.DurationNanos < int64(4*time.Second)/5 {
			t.Errorf("post/%s.pprof: %d samples over %s, want samples over its four 1 s slices", name, len(p.Sample), time.Duration(p.DurationNanos))
		}
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## post\n", "### command-api\n", "`go tool pprof -http=: post/command-api.pprof`",
		"| top 12 by flat | flat | cum |", "| top 8 by cumulative | flat | cum |", "| `runtime.", "| `github.com/nats-io/nats-server/v2/server.",
		"## list\n", "## write-visible\n", "## put-first\n"} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.md lacks %q:\n%s", want, readme)
		}
	}
	md, err := os.ReadFile(filepath.Join(cfg.OutDir, "run.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("CPU profiles of every process during each load in [run-profiles/](run-profiles/)")) {
		t.Errorf("run.md does not name the profiles:\n%s", md)
	}
}
