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
	RawFiber   Load       `json:"raw_fiber_get"`  // baseline of Get
	Get        Load       `json:"get_article"`    // GET /api/articles/{id}, cached
	List       Load       `json:"list_articles"`  // GET /api/articles?limit=20
	RawPublish Load       `json:"raw_js_publish"` // baseline of Post
	Post       Load       `json:"post_article"`   // POST /api/articles
	Put        Load       `json:"put_article"`    // PUT /api/articles/{id}
	Visibility Visibility `json:"visibility"`
	Replay     Replay     `json:"replay"`
	ColdStart  ColdStart  `json:"cold_start"`
	RSS        []RSS      `json:"peak_rss"`
	Ratios     Ratios     `json:"ratios"`
	Notes      Notes      `json:"notes"`
}

// Replay is the projector folding a stream into a fresh read model.
type Replay struct {
	Events         int64   `json:"events"`
	Articles       int64   `json:"articles"`
	PublishSeconds float64 `json:"publish_seconds"` // writing the events (not part of the figure)
	Seconds        float64 `json:"seconds"`         // projector start → ack floor = last sequence
	StartupSeconds float64 `json:"startup_seconds"` // projector start → /readyz 200, part of Seconds
	Acked          int64   `json:"acked"`           // events acknowledged (all, unless timed out)
	EventsPerSec   float64 `json:"events_per_second"`
	TimedOut       bool    `json:"timed_out,omitempty"`
}

// ColdStart is the query API starting on a full bucket.
type ColdStart struct {
	Articles     int64   `json:"articles"`      // snapshots in KV
	Seconds      float64 `json:"seconds"`       // process start → /readyz 200
	ViewArticles int64   `json:"view_articles"` // articles in its view when ready
}

// RSS is the peak resident set size of one process (VmHWM).
type RSS struct {
	Process string  `json:"process"`
	MiB     float64 `json:"mib"`
}

// Ratios are inkstream's figures over their same-run baselines.
type Ratios struct {
	GetVsRawFiber    float64 `json:"get_vs_raw_fiber"`
	PostVsRawPublish float64 `json:"post_vs_raw_publish"`
	// The replay's rate over the rate at which the same server took the
	// same events by asynchronous publish just before: every replayed event
	// costs it a delivery, an ack and a KV put, itself a publish.
	ReplayVsPublish float64 `json:"replay_vs_async_publish"`
}

// Notes are figures that explain the others.
type Notes struct {
	SeedArticles   int64   `json:"seed_articles"`
	GetCacheMisses int64   `json:"get_cache_misses"`           // reads the view could not serve during the cached GET load
	PostCatchUpMS  float64 `json:"post_projector_catch_up_ms"` // projector backlog after the POST load
	PutCatchUpMS   float64 `json:"put_projector_catch_up_ms"`
}

// Meta describes where and how the benchmark ran.
type Meta struct {
	Date           string  `json:"date"`
	GoVersion      string  `json:"go_version"`
	BinaryGo       string  `json:"binaries_go_version"`
	CPU            string  `json:"cpu"`
	Cores          int     `json:"cores"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	Command        string  `json:"command"`
	Mode           string  `json:"mode"`
	Only           string  `json:"only,omitempty"` // loads or replay: the other part did not run
	Runs           int     `json:"runs"`
	DurationS      float64 `json:"duration_seconds"`
	WarmupS        float64 `json:"warmup_seconds"`
	Connections    int     `json:"connections"`
	SeedArticles   int     `json:"seed_articles"`
	VisibilityRate int     `json:"visibility_rate"`
	ReplayEvents   int     `json:"replay_events"`
	ColdArticles   int     `json:"cold_articles"`
	ElapsedS       float64 `json:"elapsed_seconds"`
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
	r.Ratios = Ratios{GetVsRawFiber: div(r.Get.RPS, r.RawFiber.RPS), PostVsRawPublish: div(r.Post.RPS, r.RawPublish.RPS),
		ReplayVsPublish: div(r.Replay.EventsPerSec, r.Replay.publishRate())}
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

// The performance targets the README's benchmark table judges against.
const (
	targetGetRatio    = 0.8
	targetGetP99MS    = 5.0
	targetPostRatio   = 0.7
	targetPostRPS     = 10_000
	targetVisP99MS    = 20.0
	targetReplayRate  = 50_000
	targetRateReached = 0.95 // share of the visibility rate that must be sent
)

// targets judges the median against the targets. A load with errors fails.
func targets(m Result) []Target {
	get := Target{Name: "cached GET", Target: fmt.Sprintf("≥ %.1f× raw Fiber and p99 ≤ %.0f ms", targetGetRatio, targetGetP99MS),
		Value: fmt.Sprintf("%.2f× raw Fiber, p99 %s ms, %d errors", m.Ratios.GetVsRawFiber, fmtMS(m.Get.P99), m.Get.Errors)}
	get.Pass = m.Ratios.GetVsRawFiber >= targetGetRatio && m.Get.P99 <= targetGetP99MS && m.Get.Errors == 0 && m.Get.Requests > 0
	post := Target{Name: "POST", Target: fmt.Sprintf("≥ %.1f× raw JetStream publish and ≥ %s/s", targetPostRatio, fmtInt(targetPostRPS)),
		Value: fmt.Sprintf("%.2f× raw publish, %s/s, %d errors", m.Ratios.PostVsRawPublish, fmtInt(m.Post.RPS), m.Post.Errors)}
	post.Pass = m.Ratios.PostVsRawPublish >= targetPostRatio && m.Post.RPS >= targetPostRPS && m.Post.Errors == 0
	v := m.Visibility
	vis := Target{Name: "write → visible", Target: fmt.Sprintf("p99 ≤ %.0f ms at %s writes/s", targetVisP99MS, fmtInt(float64(v.Rate))),
		Value: fmt.Sprintf("p99 %s ms at %s writes/s, %d errors", fmtMS(v.P99), fmtInt(v.Achieved), v.WriteErrors+v.PollErrors)}
	vis.Pass = v.P99 <= targetVisP99MS && v.Achieved >= targetRateReached*float64(v.Rate) && v.WriteErrors+v.PollErrors == 0 && v.Visible > 0
	rep := Target{Name: "projector replay", Target: fmt.Sprintf("≥ %s events/s", fmtInt(targetReplayRate)),
		Value: fmt.Sprintf("%s events/s over %s events", fmtInt(m.Replay.EventsPerSec), fmtInt(float64(m.Replay.Events)))}
	rep.Pass = m.Replay.EventsPerSec >= targetReplayRate && !m.Replay.TimedOut
	return []Target{get, post, vis, rep}
}

// judged is targets of the parts that ran: with -only, the other part's
// figures are zero and not judged.
func judged(m Result, only string) []Target {
	ts := targets(m)
	if only == "" {
		return ts
	}
	return slices.DeleteFunc(ts, func(t Target) bool { return (t.Name == "projector replay") != (only == "replay") })
}

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

// table renders the median as the one Markdown table.
func table(m Result, ts []Target, conns int, only string) string {
	c := strconv.Itoa(conns)
	tg := map[string]Target{}
	for _, t := range ts {
		tg[t.Name] = t
	}
	var rows []row
	if only != "replay" {
		rows = append(rows, loadRow("baseline: raw Fiber GET by id from a map, "+c+" conns", m.RawFiber, "req/s"))
	}
	if only != "replay" {
		get := loadRow("GET /api/articles/{id} (cached), "+c+" conns", m.Get, "req/s")
		get.ratio, get.target, get.result = fmt.Sprintf("%.2f× raw Fiber", m.Ratios.GetVsRawFiber), tg["cached GET"].Target, verdict(tg["cached GET"])
		rows = append(rows, get, loadRow("GET /api/articles?limit=20, "+c+" conns", m.List, "req/s"),
			loadRow("baseline: raw sync JetStream publish, "+c+" publishers", m.RawPublish, "msg/s"))
		post := loadRow("POST /api/articles, "+c+" conns", m.Post, "req/s")
		post.ratio, post.target, post.result = fmt.Sprintf("%.2f× raw publish", m.Ratios.PostVsRawPublish), tg["POST"].Target, verdict(tg["POST"])
		rows = append(rows, post, loadRow("PUT /api/articles/{id}, "+c+" conns", m.Put, "req/s"))
		v := m.Visibility
		rows = append(rows, row{
			name:  fmt.Sprintf("write → visible in query API at %s writes/s", fmtInt(float64(v.Rate))),
			value: fmtInt(v.Achieved) + " writes/s", p50: fmtMS(v.P50), p99: fmtMS(v.P99), p999: fmtMS(v.P999), max: fmtMS(v.Max),
			errors: strconv.FormatInt(v.WriteErrors+v.PollErrors, 10), target: tg["write → visible"].Target, result: verdict(tg["write → visible"]),
		})
	}
	if only != "loads" {
		r := m.Replay
		replay := row{name: fmt.Sprintf("projector replay of %s events (%s articles)", fmtInt(float64(r.Events)), fmtInt(float64(r.Articles))),
			value: fmtInt(r.EventsPerSec) + " events/s", target: tg["projector replay"].Target, result: verdict(tg["projector replay"])}
		if r.TimedOut {
			replay.errors = fmt.Sprintf("timed out at %s acked", fmtInt(float64(r.Acked)))
		}
		if r.PublishSeconds > 0 {
			replay.ratio = fmt.Sprintf("%.2f× async publish", m.Ratios.ReplayVsPublish)
			rows = append(rows, row{name: fmt.Sprintf("baseline: async publish of the same %s events to the same server, beforehand", fmtInt(float64(r.Events))),
				value: fmtInt(r.publishRate()) + " events/s"})
		}
		rows = append(rows, replay, row{
			name:  fmt.Sprintf("query-api cold start, %s articles in KV", fmtInt(float64(m.ColdStart.Articles))),
			value: fmt.Sprintf("%.3f s", m.ColdStart.Seconds),
		})
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

// markdown renders the Markdown file of the results: the header, the table and the notes.
func markdown(rep Report) string {
	m, meta := rep.Median, rep.Meta
	var b strings.Builder
	b.WriteString("# inkstream benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n", meta.Date)
	fmt.Fprintf(&b, "- go version: %s (services built with %s)\n", meta.GoVersion, meta.BinaryGo)
	fmt.Fprintf(&b, "- CPU: %s, %d cores (GOMAXPROCS %d); load generator, NATS and services share them\n", meta.CPU, meta.Cores, meta.GOMAXPROCS)
	fmt.Fprintf(&b, "- command: `%s`\n", meta.Command)
	fmt.Fprintf(&b, "- mode: %s; %d run(s)%s; %s s per load after %s s warm-up; took %.0f s\n", meta.Mode, meta.Runs,
		map[bool]string{true: ", every figure and ratio the median over the runs (each run in the JSON results)", false: ""}[meta.Runs > 1],
		strconv.FormatFloat(meta.DurationS, 'f', -1, 64), strconv.FormatFloat(meta.WarmupS, 'f', -1, 64), meta.ElapsedS)
	b.WriteString("\n")
	b.WriteString(table(m, rep.Targets, meta.Connections, meta.Only))
	b.WriteString("\n")
	fmt.Fprintf(&b, "How: one nats-server (JetStream, file store in a temp dir), command-api, projector and query-api as separate processes on loopback, "+
		"their default flags. Loads at %d connections are closed loops (each connection sends its next request when the previous one is answered) "+
		"over %s seeded articles; req/s counts successful answers, latencies are of successful requests. "+
		"Baselines run in the same run against the same server: a bare Fiber v2 app (a child process) serving the query API's own article JSON from a Go map "+
		"(it and the cached GET take turns, a quarter of their duration at a time, so the machine's drifts fall on both; so do the next two), "+
		"and js.PublishMsg of the POST's event (same size and headers, into stream ARTICLES, so the projector and query API do the same work behind it) from %d goroutines on one connection, waiting for each ack. "+
		"Write → visible: PUTs of the seeded articles at a fixed rate (vegeta); after a sample of them (about 250/s), GET /api/articles/{id} on the query API every 1 ms until its ETag shows the written version, timed from the PUT's response: the projector, KV and the view's watch, since a read without a token is served from the view. "+
		"Replay: the events are published straight to a fresh server with no projector running (asynchronously, at most %s awaiting their acks: the replay's baseline), then one projector process is started and timed until "+
		"consumer projector's ack floor is the stream's last sequence. Cold start: the read model the replay built, a fresh query-api process, timed from exec to /readyz 200.\n\n",
		meta.Connections, fmtInt(float64(meta.SeedArticles)), meta.Connections, fmtInt(publishWindow))
	b.WriteString("Notes:\n\n")
	v := m.Visibility
	if meta.Only != "replay" {
		fmt.Fprintf(&b, "- write → visible: %s writes, %s sampled, %s GETs; %s reads were answered by replaying the article from the stream; "+
			"the projector had acknowledged every write %s ms after the last write's response; PUT p99 at this rate %s ms.\n",
			fmtInt(float64(v.Writes)), fmtInt(float64(v.Sampled)), fmtInt(float64(v.Polls)), fmtInt(float64(v.ReplaysOnMiss)), fmtMS(v.CatchUpMS), fmtMS(v.WriteP99))
		fmt.Fprintf(&b, "- cached GET: %d reads missed the view during the load.\n", m.Notes.GetCacheMisses)
		fmt.Fprintf(&b, "- projector backlog: drained %s ms after the POST load, %s ms after the PUT load.\n", fmtMS(m.Notes.PostCatchUpMS), fmtMS(m.Notes.PutCatchUpMS))
	}
	if meta.Only != "loads" {
		fmt.Fprintf(&b, "- replay: %.2f s in all, of which %.3f s until the projector's /readyz; writing the %s events beforehand took %.1f s (not part of the figure); the cold-start view held %s articles.\n",
			m.Replay.Seconds, m.Replay.StartupSeconds, fmtInt(float64(m.Replay.Events)), m.Replay.PublishSeconds, fmtInt(float64(m.ColdStart.ViewArticles)))
	}
	loads := []struct {
		name string
		l    Load
	}{{"raw Fiber", m.RawFiber}, {"cached GET", m.Get}, {"list", m.List}, {"raw publish", m.RawPublish}, {"POST", m.Post}, {"PUT", m.Put}}
	for _, l := range loads {
		if len(l.l.ErrorKinds) > 0 {
			fmt.Fprintf(&b, "- %s errors: %s\n", l.name, errorKinds(l.l.ErrorKinds))
		}
	}
	if len(v.ErrorKinds) > 0 {
		fmt.Fprintf(&b, "- write → visible errors: %s\n", errorKinds(v.ErrorKinds))
	}
	if meta.Only != "replay" {
		b.WriteString("- CPU time per request by process, µs (share of one core) [read and write system calls per request], from /proc/<pid>/stat and /proc/<pid>/io over each load:\n")
		for _, l := range loads {
			if len(l.l.CPU) > 0 {
				fmt.Fprintf(&b, "  - %s: %s\n", l.name, cpuSplit(l.l.CPU))
			}
		}
	}
	if !strings.HasPrefix(meta.Mode, "full") {
		b.WriteString("- not full mode: shorter loads and a smaller replay; PASS/FAIL is indicative only.\n")
	}
	return b.String()
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
