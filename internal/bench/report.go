package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Result is everything one run measured.
type Result struct {
	Loads               // on one nats-server (part loads)
	Replay    Replay    `json:"replay"`
	Rebuild   Rebuild   `json:"rebuild"`
	ColdStart ColdStart `json:"cold_start"`
	Disk      Disk      `json:"disk"`
	Memory    []Memory  `json:"memory,omitempty"`
	Cluster   Loads     `json:"cluster,omitzero"` // on three nodes, replicas 3 (part cluster)
	RSS       []RSS     `json:"peak_rss"`
	Ratios    Ratios    `json:"ratios"`
}

// Loads are the HTTP loads against one deployment of NATS (a single
// server, or a cluster), each beside its baseline of the same run.
type Loads struct {
	Replicas   int        `json:"replicas,omitempty"` // of the stream and the bucket
	RawFiber   Load       `json:"raw_fiber_get"`      // baseline of Get
	Get        Load       `json:"get_article"`        // GET /api/articles/{id}, cached
	List       Load       `json:"list_articles"`      // GET /api/articles?limit=20
	RawPublish Load       `json:"raw_js_publish"`     // baseline of Post: the create events
	Post       Load       `json:"post_article"`       // POST /api/articles
	RawUpdate  Load       `json:"raw_js_update"`      // baseline of Put: the update events
	PutCold    Load       `json:"put_article_first"`  // the first PUT of each seeded article, its state outside the command API's cache
	Put        Load       `json:"put_article"`        // PUT /api/articles/{id}
	Visibility Visibility `json:"visibility"`
	RawBatch   Load       `json:"raw_atomic_batch"` // baseline of Bulk: a request is one batch of BulkSize events
	Bulk       Load       `json:"bulk_create"`      // POST /api/articles/_bulk: a request is BulkSize articles
	BulkSize   int        `json:"bulk_size,omitempty"`
	Notes      Notes      `json:"notes"`
}

// Replay is the projector catching up with a backlog: folding a stream
// into a fresh read model.
type Replay struct {
	Events         int64     `json:"events"`
	Articles       int64     `json:"articles"`
	PublishSeconds float64   `json:"publish_seconds"` // writing the events: the baseline
	Seconds        float64   `json:"seconds"`         // projector start → ack floor = last sequence
	StartupSeconds float64   `json:"startup_seconds"` // projector start → /readyz 200, part of Seconds
	Acked          int64     `json:"acked"`           // events acknowledged (all, unless timed out)
	EventsPerSec   float64   `json:"events_per_second"`
	TimedOut       bool      `json:"timed_out,omitempty"`
	CPU            []ProcCPU `json:"cpu,omitempty"` // per event
}

// Rebuild is `inkstream rebuild` folding the same stream into the bucket
// again, in its own process.
type Rebuild struct {
	Events       int64     `json:"events"`
	Seconds      float64   `json:"seconds"` // exec → exit
	EventsPerSec float64   `json:"events_per_second"`
	Snapshots    int64     `json:"snapshots"` // keys in the bucket afterwards
	Summary      string    `json:"summary,omitempty"`
	TimedOut     bool      `json:"timed_out,omitempty"`
	Failed       bool      `json:"failed,omitempty"` // it exited with an error (Error); then EventsPerSec is 0
	Error        string    `json:"error,omitempty"`
	CPU          []ProcCPU `json:"cpu,omitempty"` // per event
}

// ColdStart is the query API starting on a full bucket.
type ColdStart struct {
	Articles     int64   `json:"articles"`      // snapshots in KV
	Seconds      float64 `json:"seconds"`       // process start → /readyz 200
	ViewArticles int64   `json:"view_articles"` // articles in its view when ready
}

// Disk is what the same events take on disk in stream ARTICLES stored
// with S2 compression and without.
type Disk struct {
	Events      int64   `json:"events"`
	StoredBytes int64   `json:"stored_bytes"` // the stream's own count: messages, uncompressed
	S2Bytes     int64   `json:"s2_bytes"`     // the store directory of the S2 stream
	NoneBytes   int64   `json:"none_bytes"`   // of the uncompressed one
	S2PerEvent  float64 `json:"s2_bytes_per_event"`
	NonePerEvt  float64 `json:"none_bytes_per_event"`
}

// Memory is the query API on a bucket of Articles snapshots.
type Memory struct {
	Articles         int64     `json:"articles"`
	ContentBytes     int       `json:"content_bytes"`
	BucketBytes      int64     `json:"bucket_bytes"`
	FillSeconds      float64   `json:"fill_seconds"` // writing the snapshots (not a figure)
	ColdStartSeconds float64   `json:"cold_start_seconds"`
	ColdStartCPU     []ProcCPU `json:"cold_start_cpu,omitempty"` // per article
	ViewArticles     int64     `json:"view_articles"`
	ReadyRSSMiB      float64   `json:"ready_rss_mib"` // VmRSS at /readyz
	ReadyHeapMiB     float64   `json:"ready_heap_mib"`
	PeakRSSMiB       float64   `json:"peak_rss_mib"` // VmHWM after the GET load
	RawFiber         Load      `json:"raw_fiber_get"`
	Get              Load      `json:"get_article"`
	GetVsRawFiber    float64   `json:"get_vs_raw_fiber"`
	GetP99VsRawFiber float64   `json:"get_p99_vs_raw_fiber_p99"`
}

// RSS is the peak resident set size of one process (VmHWM).
type RSS struct {
	Process string  `json:"process"`
	MiB     float64 `json:"mib"`
}

// Ratios are inkstream's figures over their same-run baselines.
type Ratios struct {
	GetVsRawFiber    float64 `json:"get_vs_raw_fiber"`
	GetP99VsRawFiber float64 `json:"get_p99_vs_raw_fiber_p99"`
	PostVsRawPublish float64 `json:"post_vs_raw_publish"`
	PutVsRawUpdate   float64 `json:"put_vs_raw_update_publish"`
	BulkVsRawBatch   float64 `json:"bulk_vs_raw_atomic_batch"`
	// The catch-up's rate over the rate at which the same server took the
	// same events by asynchronous publish just before: every replayed event
	// costs it a delivery, an ack and a KV put, itself a publish.
	ReplayVsPublish  float64 `json:"replay_vs_async_publish"`
	RebuildVsPublish float64 `json:"rebuild_vs_async_publish"`
	DiskS2VsNone     float64 `json:"disk_s2_vs_none"`
	ClusterGet       float64 `json:"cluster_get_vs_raw_fiber"`
	ClusterPost      float64 `json:"cluster_post_vs_raw_publish"`
	ClusterPut       float64 `json:"cluster_put_vs_raw_update_publish"`
	ClusterBulk      float64 `json:"cluster_bulk_vs_raw_atomic_batch"`
}

// Notes are figures that explain the others.
type Notes struct {
	SeedArticles   int64   `json:"seed_articles"`
	GetCacheMisses int64   `json:"get_cache_misses"`            // reads the view could not serve during the cached GET load
	PutStateMisses int64   `json:"put_state_misses"`            // first PUTs whose article's state the command API had to read from the stream
	PutLoadMisses  int64   `json:"put_load_misses"`             // the same during the PUT load after them
	WriteCatchUpMS float64 `json:"write_projector_catch_up_ms"` // projector backlog after the POST and PUT loads
	BulkCatchUpMS  float64 `json:"bulk_projector_catch_up_ms"`
}

// Meta describes where and how the benchmark ran.
type Meta struct {
	Date           string     `json:"date"`
	GoVersion      string     `json:"go_version"`
	BinaryGo       string     `json:"binaries_go_version"`
	CPU            string     `json:"cpu"`
	Cores          int        `json:"cores"`
	GOMAXPROCS     int        `json:"gomaxprocs"`
	LoadAvg        string     `json:"load_average,omitempty"` // /proc/loadavg when the run began
	LoadAvgEnd     string     `json:"load_average_end,omitempty"`
	OthersCPUS     float64    `json:"others_cpu_seconds"` // CPU time other processes on the machine used during the run
	OthersCores    float64    `json:"others_cores"`       // the same over the run's wall time
	Command        string     `json:"command"`
	ServiceEnv     []string   `json:"service_env,omitempty"`
	Mode           string     `json:"mode"`
	Only           string     `json:"only,omitempty"`
	Parts          []string   `json:"parts,omitempty"`
	Runs           int        `json:"runs"`
	DurationS      float64    `json:"duration_seconds"`
	WarmupS        float64    `json:"warmup_seconds"`
	Connections    int        `json:"connections"`
	SeedArticles   int        `json:"seed_articles"`
	VisibilityRate int        `json:"visibility_rate"` // asked with -visibility-rate; 0: half the PUT rate
	BulkConns      int        `json:"bulk_conns,omitempty"`
	BulkSize       int        `json:"bulk_size,omitempty"`
	ReplayEvents   int        `json:"replay_events"`
	ColdArticles   int        `json:"cold_articles"`
	MemoryArticles []int      `json:"memory_articles,omitempty"`
	ContentBytes   int        `json:"content_bytes,omitempty"`
	ElapsedS       float64    `json:"elapsed_seconds"`
	PartSeconds    []PartTime `json:"part_seconds,omitempty"` // wall time of each part, summed over the runs
	Profiles       string     `json:"profiles,omitempty"`     // -pprof: the directory of the CPU profiles, beside the results
}

// PartTime is how long a part took.
type PartTime struct {
	Part    string  `json:"part"`
	Seconds float64 `json:"seconds"`
}

// ran reports whether the part ran. Results from before the parts had
// only loads and replay, unless -only named one.
func (m Meta) ran(part string) bool {
	if len(m.Parts) > 0 {
		return slices.Contains(m.Parts, part)
	}
	if m.Only != "" {
		return m.Only == part
	}
	return part == partLoads || part == partReplay
}

// Target is one performance target and whether the median met it.
type Target struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
}

// Report is what the JSON file of the results holds.
type Report struct {
	Meta    Meta     `json:"meta"`
	Median  Result   `json:"median"`
	Targets []Target `json:"targets"`
	Runs    []Result `json:"runs"`
}

// ratios fills r.Ratios from its loads.
func (r *Result) ratios() {
	r.Ratios = Ratios{
		GetVsRawFiber: div(r.Get.RPS, r.RawFiber.RPS), GetP99VsRawFiber: div(r.Get.P99, r.RawFiber.P99),
		PostVsRawPublish: div(r.Post.RPS, r.RawPublish.RPS), PutVsRawUpdate: div(r.Put.RPS, r.RawUpdate.RPS),
		BulkVsRawBatch:  div(r.Bulk.RPS, r.RawBatch.RPS),
		ReplayVsPublish: div(r.Replay.EventsPerSec, r.Replay.publishRate()), RebuildVsPublish: div(r.Rebuild.EventsPerSec, r.Replay.publishRate()),
		DiskS2VsNone: div(float64(r.Disk.S2Bytes), float64(r.Disk.NoneBytes)),
		ClusterGet:   div(r.Cluster.Get.RPS, r.Cluster.RawFiber.RPS), ClusterPost: div(r.Cluster.Post.RPS, r.Cluster.RawPublish.RPS),
		ClusterPut: div(r.Cluster.Put.RPS, r.Cluster.RawUpdate.RPS), ClusterBulk: div(r.Cluster.Bulk.RPS, r.Cluster.RawBatch.RPS),
	}
	for i := range r.Memory {
		m := &r.Memory[i]
		m.GetVsRawFiber, m.GetP99VsRawFiber = div(m.Get.RPS, m.RawFiber.RPS), div(m.Get.P99, m.RawFiber.P99)
	}
}

// publishRate is the rate at which the replay's events were published.
func (r Replay) publishRate() float64 { return div(float64(r.Events), r.PublishSeconds) }

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median returns the run whose every number is the median of that number
// over the runs (ratios included: the median of the per-run ratios).
// Booleans are true when any run's is; strings, maps and error kinds come
// from the first run.
func median(runs []Result) Result {
	if len(runs) == 1 {
		return runs[0]
	}
	var out Result
	vs := make([]reflect.Value, len(runs))
	for i := range runs {
		vs[i] = reflect.ValueOf(runs[i])
	}
	medianInto(reflect.ValueOf(&out).Elem(), vs)
	return out
}

func medianInto(dst reflect.Value, srcs []reflect.Value) {
	switch dst.Kind() {
	case reflect.Struct:
		for i := range dst.NumField() {
			fs := make([]reflect.Value, len(srcs))
			for j, s := range srcs {
				fs[j] = s.Field(i)
			}
			medianInto(dst.Field(i), fs)
		}
	case reflect.Slice:
		n := srcs[0].Len()
		for _, s := range srcs {
			if s.Len() != n {
				dst.Set(srcs[0])
				return
			}
		}
		dst.Set(reflect.MakeSlice(dst.Type(), n, n))
		for i := range n {
			es := make([]reflect.Value, len(srcs))
			for j, s := range srcs {
				es[j] = s.Index(i)
			}
			medianInto(dst.Index(i), es)
		}
	case reflect.Float64:
		xs := make([]float64, len(srcs))
		for i, s := range srcs {
			xs[i] = s.Float()
		}
		dst.SetFloat(medianOf(xs))
	case reflect.Int, reflect.Int64:
		xs := make([]float64, len(srcs))
		for i, s := range srcs {
			xs[i] = float64(s.Int())
		}
		dst.SetInt(int64(math.Round(medianOf(xs))))
	case reflect.Bool:
		for _, s := range srcs {
			if s.Bool() {
				dst.SetBool(true)
			}
		}
	default:
		dst.Set(srcs[0])
	}
}

func medianOf(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// The performance targets of DESIGN.md ("Performance targets"), which the
// report judges the median against.
const (
	targetGetRatio     = 0.95 // cached GET over raw Fiber
	targetGetP99Ratio  = 1.2  // cached GET's p99 over raw Fiber's
	targetWriteRatio   = 0.8  // POST and PUT over raw synchronous publish
	targetWriteRPS     = 10_000
	targetVisP99MS     = 20.0
	targetVisP50MS     = 3.0
	targetRebuildRatio = 2.0 // rebuild over async publish of the same events
	targetReplayRatio  = 1.0 // projector catch-up over async publish
	targetBulkRatio    = 0.5 // bulk create over raw atomic batch publish
	targetMemoryMiB    = 1024
	targetColdStartS   = 10.0
	targetRateReached  = 0.95 // share of the visibility rate that must be sent
)

// targets judges the median against the targets of the parts that ran. A
// load with errors fails.
func targets(m Result, meta Meta) []Target {
	var ts []Target
	if meta.ran(partLoads) {
		ts = append(ts, getTarget("cached GET", m.Get, m.RawFiber))
		ts = append(ts, writeTarget("POST", m.Post, m.RawPublish, "raw publish"), writeTarget("PUT", m.Put, m.RawUpdate, "raw publish"))
		v := m.Visibility
		vis := Target{Name: "write → visible",
			Target: fmt.Sprintf("p99 ≤ %.0f ms and p50 ≤ %.0f ms at half the PUT rate (here %s writes/s: %s)", targetVisP99MS, targetVisP50MS, fmtInt(float64(v.Rate)), v.rateSource()),
			Value:  fmt.Sprintf("p50 %s ms, p99 %s ms at %s writes/s, %d errors", fmtMS(v.P50), fmtMS(v.P99), fmtInt(v.Achieved), v.WriteErrors+v.PollErrors)}
		vis.Pass = v.P99 <= targetVisP99MS && v.P50 <= targetVisP50MS && v.Achieved >= targetRateReached*float64(v.Rate) &&
			v.WriteErrors+v.PollErrors == 0 && v.Visible > 0
		ts = append(ts, vis)
		size := fmtInt(float64(m.BulkSize))
		bulk := Target{Name: "bulk create", Target: fmt.Sprintf("≥ %.1f× raw atomic batch publish", targetBulkRatio),
			Value: fmt.Sprintf("%.2f× raw atomic batch, %s articles/s in bulks of %s, %d errors", m.Ratios.BulkVsRawBatch, fmtInt(m.Bulk.RPS*float64(m.BulkSize)), size, m.Bulk.Errors)}
		bulk.Pass = m.Ratios.BulkVsRawBatch >= targetBulkRatio && m.Bulk.Errors == 0 && m.Bulk.Requests > 0
		ts = append(ts, bulk)
	}
	if meta.ran(partReplay) {
		rb := Target{Name: "rebuild", Target: fmt.Sprintf("≥ %.0f× async publish of the same events", targetRebuildRatio),
			Value: fmt.Sprintf("%.2f× async publish, %s events/s over %s events", m.Ratios.RebuildVsPublish, fmtInt(m.Rebuild.EventsPerSec), fmtInt(float64(m.Rebuild.Events)))}
		rb.Pass = m.Ratios.RebuildVsPublish >= targetRebuildRatio && !m.Rebuild.TimedOut && !m.Rebuild.Failed && m.Rebuild.Events > 0
		if m.Rebuild.Failed {
			rb.Value += "; it failed in a run (see the notes)"
		}
		rp := Target{Name: "projector catch-up", Target: fmt.Sprintf("≥ %.0f× async publish of the same events", targetReplayRatio),
			Value: fmt.Sprintf("%.2f× async publish, %s events/s over %s events", m.Ratios.ReplayVsPublish, fmtInt(m.Replay.EventsPerSec), fmtInt(float64(m.Replay.Events)))}
		rp.Pass = m.Ratios.ReplayVsPublish >= targetReplayRatio && !m.Replay.TimedOut && m.Replay.Acked > 0
		ts = append(ts, rb, rp)
	}
	if meta.ran(partMemory) && len(m.Memory) > 0 {
		// The largest bucket is the one the targets name.
		mm := m.Memory[len(m.Memory)-1]
		n := fmtInt(float64(mm.Articles))
		rss := Target{Name: "query API, " + n + " articles: memory", Target: fmt.Sprintf("peak RSS ≤ %s MiB", fmtInt(targetMemoryMiB)),
			Value: fmt.Sprintf("%.0f MiB", mm.PeakRSSMiB), Pass: mm.PeakRSSMiB > 0 && mm.PeakRSSMiB <= targetMemoryMiB}
		cold := Target{Name: "query API, " + n + " articles: cold start", Target: fmt.Sprintf("to /readyz ≤ %.0f s", targetColdStartS),
			Value: fmt.Sprintf("%.2f s", mm.ColdStartSeconds), Pass: mm.ColdStartSeconds > 0 && mm.ColdStartSeconds <= targetColdStartS && mm.ViewArticles >= mm.Articles}
		get := getTarget("query API, "+n+" articles: cached GET", mm.Get, mm.RawFiber)
		ts = append(ts, rss, cold, get)
	}
	return ts
}

func getTarget(name string, get, raw Load) Target {
	ratio, p99 := div(get.RPS, raw.RPS), div(get.P99, raw.P99)
	t := Target{Name: name, Target: fmt.Sprintf("≥ %.2f× raw Fiber and p99 ≤ %.1f× raw Fiber's p99", targetGetRatio, targetGetP99Ratio),
		Value: fmt.Sprintf("%.2f× raw Fiber, p99 %s ms = %.2f× raw Fiber's %s ms, %d errors", ratio, fmtMS(get.P99), p99, fmtMS(raw.P99), get.Errors)}
	t.Pass = ratio >= targetGetRatio && p99 <= targetGetP99Ratio && get.Errors == 0 && get.Requests > 0
	return t
}

func writeTarget(name string, w, raw Load, baseline string) Target {
	ratio := div(w.RPS, raw.RPS)
	t := Target{Name: name, Target: fmt.Sprintf("≥ %.1f× raw sync JetStream publish and ≥ %s/s", targetWriteRatio, fmtInt(targetWriteRPS)),
		Value: fmt.Sprintf("%.2f× %s, %s/s, %d errors", ratio, baseline, fmtInt(w.RPS), w.Errors)}
	t.Pass = ratio >= targetWriteRatio && w.RPS >= targetWriteRPS && w.Errors == 0
	return t
}

// judged is the targets of the parts that ran.
func judged(m Result, meta Meta) []Target { return targets(m, meta) }

// row is one line of the table.
type row struct {
	name, value, p50, p99, p999, max, errors, ratio, target, result string
}

func loadRow(name string, l Load, unit string) row {
	return row{name: name, value: fmtInt(l.RPS) + " " + unit, p50: fmtMS(l.P50), p99: fmtMS(l.P99), p999: fmtMS(l.P999), max: fmtMS(l.Max), errors: strconv.FormatInt(l.Errors, 10)}
}

func verdict(t Target) string {
	if t.Pass {
		return "PASS"
	}
	return "FAIL"
}

// judge fills a row's target and result from the target of that name, if
// one was judged.
func (r row) judge(tg map[string]Target, name string) row {
	if t, ok := tg[name]; ok {
		r.target, r.result = t.Target, verdict(t)
	}
	return r
}

// loadRows are the rows of the loads on one deployment; prefix names it
// (empty, or "cluster R3: "), and judge says whether targets apply.
func loadRows(l Loads, ratios Ratios, conns, bulkConns int, prefix string, tg map[string]Target) []row {
	c, bc := strconv.Itoa(conns), strconv.Itoa(bulkConns)
	get := loadRow(prefix+"GET /api/articles/{id} (cached), "+c+" conns", l.Get, "req/s")
	get.ratio = fmt.Sprintf("%.2f× raw Fiber; p99 %.2f× raw Fiber's", div(l.Get.RPS, l.RawFiber.RPS), div(l.Get.P99, l.RawFiber.P99))
	post := loadRow(prefix+"POST /api/articles, "+c+" conns", l.Post, "req/s")
	post.ratio = fmt.Sprintf("%.2f× raw publish", div(l.Post.RPS, l.RawPublish.RPS))
	put := loadRow(prefix+"PUT /api/articles/{id}, "+c+" conns", l.Put, "req/s")
	put.ratio = fmt.Sprintf("%.2f× raw publish (updates)", div(l.Put.RPS, l.RawUpdate.RPS))
	v := l.Visibility
	vis := row{
		name:  fmt.Sprintf("%swrite → visible in query API at %s writes/s (%s)", prefix, fmtInt(float64(v.Rate)), v.rateSource()),
		value: fmtInt(v.Achieved) + " writes/s", p50: fmtMS(v.P50), p99: fmtMS(v.P99), p999: fmtMS(v.P999), max: fmtMS(v.Max),
		errors: strconv.FormatInt(v.WriteErrors+v.PollErrors, 10),
	}
	size := fmtInt(float64(l.BulkSize))
	rawBatch := loadRow(prefix+"baseline: raw atomic batch publish of "+size+" create events, "+bc+" publishers", l.RawBatch, "")
	rawBatch.value = fmtInt(l.RawBatch.RPS*float64(l.BulkSize)) + " events/s"
	bulk := loadRow(prefix+"POST /api/articles/_bulk of "+size+" articles, "+bc+" conns", l.Bulk, "")
	bulk.value = fmtInt(l.Bulk.RPS*float64(l.BulkSize)) + " articles/s"
	bulk.ratio = fmt.Sprintf("%.2f× raw atomic batch", div(l.Bulk.RPS, l.RawBatch.RPS))
	if tg != nil {
		get, post, put, vis, bulk = get.judge(tg, "cached GET"), post.judge(tg, "POST"), put.judge(tg, "PUT"), vis.judge(tg, "write → visible"), bulk.judge(tg, "bulk create")
	}
	rows := []row{
		loadRow(prefix+"baseline: raw Fiber GET by id from a map, "+c+" conns", l.RawFiber, "req/s"),
		get,
		loadRow(prefix+"GET /api/articles?limit=20, "+c+" conns", l.List, "req/s"),
		loadRow(prefix+"baseline: raw sync JetStream publish of the create events, "+c+" publishers", l.RawPublish, "msg/s"),
		post,
		loadRow(prefix+"baseline: raw sync JetStream publish of the update events, "+c+" publishers", l.RawUpdate, "msg/s"),
		put,
	}
	if l.PutCold.Requests > 0 {
		cold := loadRow(fmt.Sprintf("%sPUT /api/articles/{id}: the first of each of %s articles after the POST load (state outside the command API's cache), %s conns", prefix, fmtInt(float64(l.PutCold.Requests+l.PutCold.Errors)), c), l.PutCold, "req/s")
		rows = append(rows, cold)
	}
	rows = append(rows, vis)
	if l.Bulk.Requests > 0 || l.RawBatch.Requests > 0 {
		rows = append(rows, rawBatch, bulk)
	}
	return rows
}

// table renders the median as the one Markdown table.
func table(m Result, ts []Target, meta Meta) string {
	tg := map[string]Target{}
	for _, t := range ts {
		tg[t.Name] = t
	}
	var rows []row
	if meta.ran(partLoads) {
		rows = append(rows, loadRows(m.Loads, m.Ratios, meta.Connections, meta.BulkConns, "", tg)...)
	}
	if meta.ran(partReplay) {
		r := m.Replay
		events := fmtInt(float64(r.Events))
		if r.PublishSeconds > 0 {
			rows = append(rows, row{name: fmt.Sprintf("baseline: async publish of the same %s events to the same server, beforehand", events),
				value: fmtInt(r.publishRate()) + " events/s"})
		}
		rb := m.Rebuild
		rebuild := row{name: fmt.Sprintf("`inkstream rebuild` of %s events (%s articles)", fmtInt(float64(rb.Events)), fmtInt(float64(r.Articles))),
			value: fmtInt(rb.EventsPerSec) + " events/s", ratio: fmt.Sprintf("%.2f× async publish", m.Ratios.RebuildVsPublish)}.judge(tg, "rebuild")
		switch {
		case rb.TimedOut:
			rebuild.errors = "timed out"
		case rb.Failed:
			rebuild.errors = "failed"
		}
		replay := row{name: fmt.Sprintf("projector catch-up of %s events (%s articles)", events, fmtInt(float64(r.Articles))),
			value: fmtInt(r.EventsPerSec) + " events/s", ratio: fmt.Sprintf("%.2f× async publish", m.Ratios.ReplayVsPublish)}.judge(tg, "projector catch-up")
		if r.TimedOut {
			replay.errors = fmt.Sprintf("timed out at %s acked", fmtInt(float64(r.Acked)))
		}
		rows = append(rows, rebuild, replay, row{
			name:  fmt.Sprintf("query-api cold start, %s articles in KV", fmtInt(float64(m.ColdStart.Articles))),
			value: fmt.Sprintf("%.3f s", m.ColdStart.Seconds),
		})
		d := m.Disk
		if d.Events > 0 {
			rows = append(rows,
				row{name: fmt.Sprintf("stream on disk, S2 (the default), %s events", fmtInt(float64(d.Events))), value: fmt.Sprintf("%s bytes/event", fmtInt(d.S2PerEvent)),
					ratio: fmt.Sprintf("%.2f× uncompressed", m.Ratios.DiskS2VsNone)},
				row{name: fmt.Sprintf("stream on disk, no compression, the same %s events", fmtInt(float64(d.Events))), value: fmt.Sprintf("%s bytes/event", fmtInt(d.NonePerEvt))})
		}
	}
	if meta.ran(partMemory) {
		for i, mm := range m.Memory {
			n := fmtInt(float64(mm.Articles))
			name := "query API, " + n + " articles: "
			last := i == len(m.Memory)-1
			mem := row{name: fmt.Sprintf("query API, %s articles of %s bytes in KV: peak RSS", n, fmtInt(float64(mm.ContentBytes))), value: fmt.Sprintf("%.0f MiB", mm.PeakRSSMiB)}
			cold := row{name: "query API, " + n + " articles: cold start to /readyz", value: fmt.Sprintf("%.2f s", mm.ColdStartSeconds)}
			raw := loadRow("query API, "+n+" articles: baseline raw Fiber GET, "+strconv.Itoa(meta.Connections)+" conns", mm.RawFiber, "req/s")
			get := loadRow("query API, "+n+" articles: GET /api/articles/{id} (cached)", mm.Get, "req/s")
			get.ratio = fmt.Sprintf("%.2f× raw Fiber; p99 %.2f× raw Fiber's", mm.GetVsRawFiber, mm.GetP99VsRawFiber)
			if last {
				mem, cold, get = mem.judge(tg, name+"memory"), cold.judge(tg, name+"cold start"), get.judge(tg, name+"cached GET")
			}
			rows = append(rows, mem, cold, raw, get)
		}
	}
	if meta.ran(partCluster) {
		rows = append(rows, loadRows(m.Cluster, m.Ratios, meta.Connections, meta.BulkConns, fmt.Sprintf("cluster R%d: ", m.Cluster.Replicas), nil)...)
	}
	for _, p := range m.RSS {
		rows = append(rows, row{name: "peak RSS: " + p.Process, value: fmt.Sprintf("%.1f MiB", p.MiB)})
	}
	var b strings.Builder
	b.WriteString("| measurement | value | p50 ms | p99 ms | p99.9 ms | max ms | errors | vs baseline | target | result |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, r.value, r.p50, r.p99, r.p999, r.max, r.errors, r.ratio, r.target, r.result)
	}
	return b.String()
}

// markdown renders the Markdown file of the results: the header, the
// targets, the table and the notes.
func markdown(rep Report) string {
	m, meta := rep.Median, rep.Meta
	var b strings.Builder
	b.WriteString("# inkstream benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n", meta.Date)
	fmt.Fprintf(&b, "- go version: %s (services built with %s)\n", meta.GoVersion, meta.BinaryGo)
	fmt.Fprintf(&b, "- CPU: %s, %d cores (GOMAXPROCS %d); load generator, NATS and services share them\n", meta.CPU, meta.Cores, meta.GOMAXPROCS)
	if meta.LoadAvg != "" {
		fmt.Fprintf(&b, "- load average (1, 5, 15 min) at the start: %s; at the end: %s; other processes on the machine used %.0f s of CPU during the run (%.2f cores on average)\n",
			meta.LoadAvg, meta.LoadAvgEnd, meta.OthersCPUS, meta.OthersCores)
	}
	fmt.Fprintf(&b, "- command: `%s`\n", meta.Command)
	if len(meta.ServiceEnv) > 0 {
		fmt.Fprintf(&b, "- services' environment: `%s` (an experiment: not the defaults)\n", strings.Join(meta.ServiceEnv, " "))
	}
	fmt.Fprintf(&b, "- mode: %s; %d run(s)%s; %s s per load after %s s warm-up; took %.0f s", meta.Mode, meta.Runs,
		map[bool]string{true: ", every figure and ratio the median over the runs (each run in the JSON results)", false: ""}[meta.Runs > 1],
		strconv.FormatFloat(meta.DurationS, 'f', -1, 64), strconv.FormatFloat(meta.WarmupS, 'f', -1, 64), meta.ElapsedS)
	if len(meta.PartSeconds) > 0 {
		var parts []string
		for _, p := range meta.PartSeconds {
			parts = append(parts, fmt.Sprintf("%s %.0f s", p.Part, p.Seconds))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	b.WriteString("\n\n")
	if len(rep.Targets) > 0 {
		b.WriteString("| target (DESIGN.md) | wanted | measured | result |\n|---|---|---|---|\n")
		for _, t := range rep.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Target, t.Value, verdict(t))
		}
		b.WriteString("\n")
	}
	b.WriteString(table(m, rep.Targets, meta))
	b.WriteString("\n")
	b.WriteString(how(meta))
	b.WriteString("Notes:\n\n")
	b.WriteString(notes(m, meta))
	for i, r := range rep.Runs {
		if r.Rebuild.Failed {
			fmt.Fprintf(&b, "- run %d: `inkstream rebuild` failed after %.1f s: `%s`\n", i+1, r.Rebuild.Seconds, r.Rebuild.Error)
		}
	}
	if meta.Profiles != "" {
		fmt.Fprintf(&b, "- -pprof: CPU profiles of every process during each load in [%s/](%s/) (its README.md lists each one's top functions); "+
			"the services ran with /debug/pprof and were profiled, which costs them some CPU.\n", meta.Profiles, meta.Profiles)
	}
	if !strings.HasPrefix(meta.Mode, "full") {
		b.WriteString("- not full mode: shorter loads and smaller data; PASS/FAIL is indicative only.\n")
	}
	return b.String()
}

// how says how each part that ran measured.
func how(meta Meta) string {
	var b strings.Builder
	b.WriteString("How: nats-server (JetStream, file store in a temp dir) and command-api, projector and query-api as separate processes on loopback, " +
		"with their default flags; the harness provisions stream, bucket and consumer as the services would.\n\n")
	if meta.ran(partLoads) || meta.ran(partCluster) {
		fmt.Fprintf(&b, "- Loads at %d connections are closed loops (each connection sends its next request when the previous one is answered) "+
			"over %s seeded articles; req/s counts successful answers, latencies are of successful requests. "+
			"Each load and its baseline run in the same run against the same server, taking turns, a quarter of their duration at a time, so that the machine's drifts fall on both: "+
			"the cached GET beside a bare Fiber v2 app (a child process) serving the query API's own article JSON from a Go map; "+
			"POST and PUT beside raw synchronous `js.PublishMsg` from %d goroutines on one connection, waiting for each ack, of the events they write "+
			"(the POST's create events; for the PUT, update events of articles of its own, with the actor, the message id and the expected last subject sequence of each, "+
			"as natsx.EventMsg builds them), into stream ARTICLES, so the projector and the query API do the same work behind them.\n",
			meta.Connections, fmtInt(float64(meta.SeedArticles)), meta.Connections)
		b.WriteString("- Write → visible: PUTs of the seeded articles at a fixed rate (vegeta), half the PUT rate measured just before unless -visibility-rate says otherwise; " +
			"after a sample of them (about 250/s), GET /api/articles/{id} on the query API every 1 ms until its ETag shows the written version, timed from the PUT's response.\n")
		fmt.Fprintf(&b, "- Bulk: POST /api/articles/_bulk of %s articles from %d connections, beside %d goroutines each committing one atomic batch "+
			"(jetstreamext.NewBatchPublisher) of the same create events, with the headers and expected sequences natsx.EventStore.AppendBatch gives them.\n",
			fmtInt(float64(meta.BulkSize)), meta.BulkConns, meta.BulkConns)
	}
	if meta.ran(partReplay) {
		fmt.Fprintf(&b, "- Replay: %s events of %s articles (version 1 of each, then version 2, ...) are published straight to a fresh server with no projector running "+
			"(asynchronously, at most %s awaiting their acks: the baseline of both figures). Projector catch-up: one projector process, timed from exec until "+
			"consumer projector's ack floor is the stream's last sequence. Rebuild: then `bin/inkstream rebuild` against the same server, timed from exec to its exit "+
			"(it purges the bucket and folds the whole stream again). Cold start: a fresh query-api process on the rebuilt bucket, exec to /readyz 200. "+
			"Bytes on disk: every message of the stream copied as stored (subject, headers, data) into the same stream provisioned with -stream-compression none on a second server, "+
			"then the space on disk of each stream's store directory (once the background compression of full blocks has settled).\n",
			fmtInt(float64(meta.ReplayEvents)), fmtInt(float64(meta.ColdArticles)), fmtInt(publishWindow))
	}
	if meta.ran(partMemory) {
		fmt.Fprintf(&b, "- Memory: the bucket is filled directly with the snapshots the projector would write (natsx.Snapshots.PutAsync: the body and the index header), "+
			"articles of %s bytes of content, no events (projecting a million events would take longer than the part may); "+
			"for each count a fresh query-api process starts on it (cold start: exec to /readyz), then its cached GET of %s of the articles (read once first) beside raw Fiber serving the same JSON. "+
			"Peak RSS is the process's VmHWM after that load.\n", fmtInt(float64(meta.ContentBytes)), fmtInt(float64(meta.SeedArticles)))
	}
	if meta.ran(partCluster) {
		b.WriteString("- Cluster: three nats-servers in one JetStream cluster on loopback, stream and bucket at replicas 3, every client connected with all three URLs; " +
			"the same loads and baselines as above. DESIGN.md sets no target: they are reported beside the raw publish at replicas 3.\n")
	}
	b.WriteString("\n")
	return b.String()
}

// notes are the figures that explain the others.
func notes(m Result, meta Meta) string {
	var b strings.Builder
	loadNotes := func(prefix string, l Loads) {
		v := l.Visibility
		fmt.Fprintf(&b, "- %swrite → visible: %s writes, %s sampled, %s GETs; %s reads were answered by replaying the article from the stream; "+
			"the projector had acknowledged every write %s ms after the last write's response; PUT p99 at this rate %s ms.\n",
			prefix, fmtInt(float64(v.Writes)), fmtInt(float64(v.Sampled)), fmtInt(float64(v.Polls)), fmtInt(float64(v.ReplaysOnMiss)), fmtMS(v.CatchUpMS), fmtMS(v.WriteP99))
		fmt.Fprintf(&b, "- %scached GET: %d reads missed the view during the load.\n", prefix, l.Notes.GetCacheMisses)
		fmt.Fprintf(&b, "- %sfirst PUT of each seeded article: %s of them found the article's state outside the command API's cache (-command-cache-bytes), pushed out by the POST load's new articles, and read its history from the stream first; during the PUT load after them, %s more did.\n", prefix, fmtInt(float64(l.Notes.PutStateMisses)), fmtInt(float64(l.Notes.PutLoadMisses)))
		fmt.Fprintf(&b, "- %sprojector backlog: drained %s ms after the POST and PUT loads, %s ms after the bulk load.\n", prefix, fmtMS(l.Notes.WriteCatchUpMS), fmtMS(l.Notes.BulkCatchUpMS))
		loads := l.named()
		for _, nl := range loads {
			if len(nl.l.ErrorKinds) > 0 {
				fmt.Fprintf(&b, "- %s%s errors: %s\n", prefix, nl.name, errorKinds(nl.l.ErrorKinds))
			}
		}
		if len(v.ErrorKinds) > 0 {
			fmt.Fprintf(&b, "- %swrite → visible errors: %s\n", prefix, errorKinds(v.ErrorKinds))
		}
		fmt.Fprintf(&b, "- %sCPU time per request by process, µs (share of one core) [read and write system calls per request], from /proc/<pid>/stat and /proc/<pid>/io over each load "+
			"(bulk and raw batch: per article):\n", prefix)
		for _, nl := range loads {
			if len(nl.l.CPU) > 0 {
				fmt.Fprintf(&b, "  - %s: %s\n", nl.name, cpuSplit(nl.l.CPU))
			}
		}
	}
	if meta.ran(partLoads) {
		loadNotes("", m.Loads)
	}
	if meta.ran(partReplay) {
		fmt.Fprintf(&b, "- catch-up: %.2f s in all, of which %.3f s until the projector's /readyz; writing the %s events beforehand took %.1f s; the cold-start view held %s articles.\n",
			m.Replay.Seconds, m.Replay.StartupSeconds, fmtInt(float64(m.Replay.Events)), m.Replay.PublishSeconds, fmtInt(float64(m.ColdStart.ViewArticles)))
		if m.Rebuild.Summary != "" {
			fmt.Fprintf(&b, "- rebuild: %.2f s from exec to exit, %s snapshots in the bucket afterwards; it said: `%s`\n", m.Rebuild.Seconds, fmtInt(float64(m.Rebuild.Snapshots)), m.Rebuild.Summary)
		}
		if len(m.Replay.CPU) > 0 {
			fmt.Fprintf(&b, "- catch-up CPU time per event, µs (share of one core): %s\n", cpuSplit(m.Replay.CPU))
		}
		if len(m.Rebuild.CPU) > 0 {
			fmt.Fprintf(&b, "- rebuild CPU time per event, µs (share of one core): %s\n", cpuSplit(m.Rebuild.CPU))
		}
		if d := m.Disk; d.Events > 0 {
			fmt.Fprintf(&b, "- on disk: %s MiB with S2, %s MiB without, for %s MiB of messages as the stream counts them (%s bytes/event).\n",
				fmtInt(float64(d.S2Bytes)/(1<<20)), fmtInt(float64(d.NoneBytes)/(1<<20)), fmtInt(float64(d.StoredBytes)/(1<<20)), fmtInt(div(float64(d.StoredBytes), float64(d.Events))))
		}
	}
	if meta.ran(partMemory) {
		for i, mm := range m.Memory {
			fmt.Fprintf(&b, "- memory, %s articles: bucket %s MiB, filled in %.1f s; at /readyz RSS %.0f MiB, Go heap in use %.0f MiB, %s articles in the view",
				fmtInt(float64(mm.Articles)), fmtInt(float64(mm.BucketBytes)/(1<<20)), mm.FillSeconds, mm.ReadyRSSMiB, mm.ReadyHeapMiB, fmtInt(float64(mm.ViewArticles)))
			if i > 0 {
				prev := m.Memory[i-1]
				fmt.Fprintf(&b, "; %s bytes of peak RSS per article more than at %s articles",
					fmtInt(div((mm.PeakRSSMiB-prev.PeakRSSMiB)*(1<<20), float64(mm.Articles-prev.Articles))), fmtInt(float64(prev.Articles)))
			}
			b.WriteString(".\n")
			if len(mm.ColdStartCPU) > 0 {
				fmt.Fprintf(&b, "  - cold start, CPU time per article, µs (share of one core): %s\n", cpuSplit(mm.ColdStartCPU))
			}
			if len(mm.Get.CPU) > 0 {
				fmt.Fprintf(&b, "  - CPU per cached GET: %s\n", cpuSplit(mm.Get.CPU))
			}
		}
	}
	if meta.ran(partCluster) {
		loadNotes(fmt.Sprintf("cluster R%d: ", m.Cluster.Replicas), m.Cluster)
	}
	return b.String()
}

// named lists the loads with their names in the notes.
func (l Loads) named() []struct {
	name string
	l    Load
} {
	return []struct {
		name string
		l    Load
	}{{"raw Fiber", l.RawFiber}, {"cached GET", l.Get}, {"list", l.List}, {"raw publish (creates)", l.RawPublish}, {"POST", l.Post},
		{"first PUT of each article", l.PutCold}, {"raw publish (updates)", l.RawUpdate}, {"PUT", l.Put}, {"raw atomic batch", l.RawBatch}, {"bulk", l.Bulk}}
}

// cpuSplit renders the CPU of each process and their sum.
func cpuSplit(cs []ProcCPU) string {
	var parts []string
	var us, cores float64
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s (%.2f) [%.2f]", c.Process, fmtInt(c.USPerReq), c.Cores, c.IOCallsPerReq))
		us += c.USPerReq
		cores += c.Cores
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; all %s (%.2f)", fmtInt(us), cores)
}

// write stores the report in <path>.md and <path>.json, and its charts in
// <path>-*.svg, which the .md shows.
func write(path string, rep Report) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	charts, err := writeCharts(path, rep)
	if err != nil {
		return "", err
	}
	md := markdown(rep) + chartsSection(charts)
	if err := os.WriteFile(path+".md", []byte(md), 0o644); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		return "", err
	}
	return md, os.WriteFile(path+".json", buf.Bytes(), 0o644)
}

func fmtMS(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// fmtInt rounds v and groups its digits by thousands with spaces.
func fmtInt(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
