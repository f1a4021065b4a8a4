// Package bench is inkstream's benchmark harness (cmd/inkbench, `make
// bench`): it starts nats-server (one, or a 3-node cluster) and the three
// services as separate processes on loopback, loads them, runs the raw
// baselines (a bare Fiber app, raw JetStream publishing: synchronous,
// asynchronous and atomic batches) in the same run, and reports every
// figure of DESIGN.md's performance targets against its target (targets,
// in report.go) in a Markdown and a JSON file named for the run
// (bench/runs/<UTC time>.md and .json; the published figures are
// bench/results*.md and .json). It builds nothing: the binaries come from
// -bin.
//
// The measurement comes in parts (-only): loads (HTTP loads, write →
// visible, bulk create, each beside its baseline), replay (projector
// catch-up, rebuild, cold start, bytes on disk), memory (the query API on
// 100 000 and 1 000 000 articles of 5 KB) and cluster (the loads on three
// nodes at replicas 3). A plain run is loads and replay.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inkstream/inkstream/internal/config"
)

// Config is one benchmark invocation.
type Config struct {
	Short          bool
	Runs           int           // repeat everything; medians are reported
	BinDir         string        // command-api, projector, query-api, inkstream, inkbench, nats-server
	OutDir         string        // where the results go
	Name           string        // of the result files, <Name>.md and <Name>.json; default: the run's UTC start time
	Publish        bool          // OutDir bench, Name results (results-<parts> for -only)
	Duration       time.Duration // of each load
	Conns          int           // connections (and publishers) of the closed-loop loads
	SeedArticles   int           // articles the GET, list and PUT loads use
	VisibilityRate int           // writes/s of the write → visible load; 0: half the PUT rate of the run
	BulkConns      int           // concurrent bulk creates (and raw atomic batches)
	BulkSize       int           // articles per bulk create and events per raw batch
	ReplayEvents   int           // events the projector replays (and rebuild folds)
	ColdArticles   int           // articles those events make, in KV for the cold start
	ReplayTimeout  time.Duration // the replay and rebuild figures are partial after this
	MemoryArticles []int         // articles in KV for each row of the memory part, ascending
	ContentBytes   int           // content of each article of the memory part
	Pprof          bool          // start the services with -pprof and save CPU profiles of each load
	ServiceEnv     []string      // added to the environment of the services (experiments: GOGC, GOMEMLIMIT)
	Only           string        // the parts, comma-separated; "": loads,replay
	Command        string        // the command line, for the header

	parts []string // of Only, set by defaults

	// Log receives progress lines; Out receives the table.
	Log, Out io.Writer
	// OnStart, if set, is told of every child process started.
	OnStart func(name string, pid int)
}

// envPrefix is the prefix of the environment variable each flag of Main
// falls back on: -runs reads INKSTREAM_BENCH_RUNS.
const envPrefix = "INKSTREAM_BENCH_"

// Main is cmd/inkbench: flags (the environment, read with getenv, first;
// the command line wins), then Run. "inkbench serve-fiber" is the raw
// Fiber baseline server that the harness runs as a child.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve-fiber" {
		return serveFiber(ctx, args[1:], stderr)
	}
	cfg := Config{Log: stderr, Out: stdout, Command: commandLine(args)}
	fs := flag.NewFlagSet("inkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.Short, "short", false, "short mode: 3 s loads, replay and rebuild of 100 000 events of 10 000 articles, memory rows of 10 000 and 100 000 articles (loads and replay: under 2 minutes)")
	fs.IntVar(&cfg.Runs, "runs", 1, "repeat the whole measurement N times and report the median of each figure and ratio")
	fs.StringVar(&cfg.BinDir, "bin", "./bin", "directory with command-api, projector, query-api, inkbench and nats-server (make build)")
	fs.StringVar(&cfg.OutDir, "out", "./bench/runs", "directory for the results")
	fs.StringVar(&cfg.Name, "name", "", "results go to -out/<name>.md and -out/<name>.json (default: the UTC start time, e.g. 20260101T120000Z; make bench BENCH_PUBLISH=1: results)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of each load (default 10s, 3s with -short)")
	fs.IntVar(&cfg.Conns, "conns", 64, "connections of the closed-loop loads and publishers of the raw publish baseline")
	fs.IntVar(&cfg.SeedArticles, "seed-articles", 1000, "articles created before the loads (GET, list and PUT use them)")
	fs.IntVar(&cfg.VisibilityRate, "visibility-rate", 0, "writes/s of the write → visible load (default: half the PUT rate measured in the same run)")
	fs.IntVar(&cfg.BulkConns, "bulk-conns", 4, "concurrent bulk creates, and concurrent raw atomic batches of their baseline")
	fs.IntVar(&cfg.BulkSize, "bulk-size", 1000, "articles per bulk create (1 to 1000)")
	fs.IntVar(&cfg.ReplayEvents, "replay-events", 0, "events of the projector catch-up and the rebuild (default 1 000 000, 100 000 with -short)")
	fs.IntVar(&cfg.ColdArticles, "cold-articles", 0, "articles those events make, in KV for the query-api cold start (default 100 000, 10 000 with -short)")
	fs.DurationVar(&cfg.ReplayTimeout, "replay-timeout", 0, "report the catch-up or the rebuild as timed out (partial rate) after this (default 4m, 60s with -short)")
	memory := fs.String("memory-articles", "", "articles in KV for each row of the memory part, comma-separated (default 100000,1000000; 10000,100000 with -short)")
	fs.IntVar(&cfg.ContentBytes, "content-bytes", 5000, "content of each article of the memory part, in bytes")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "start the services with -pprof, print their /debug/pprof addresses and save CPU profiles of each load to -out/<name>-profiles")
	serviceEnv := fs.String("service-env", "", "environment variables for command-api, projector, query-api and inkstream rebuild, comma-separated NAME=value (experiments, e.g. GOMEMLIMIT=600MiB); nats-server and the baselines do not get them")
	fs.StringVar(&cfg.Only, "only", "", "run these parts, comma-separated: loads (GET, list, POST, PUT, write → visible, bulk, their baselines), "+
		"replay (projector catch-up, rebuild, cold start, bytes on disk), memory (the query API on many 5 KB articles), "+
		"cluster (the loads on 3 nodes, replicas 3), or all (default: loads,replay)")
	fs.BoolVar(&cfg.Publish, "publish", false, "write the published results: bench/results.md and .json, or bench/results-<parts>.* with -only (make bench BENCH_PUBLISH=1)")
	redraw := fs.String("redraw", "", "draw the charts of an earlier run's results `file` (its .json) again and rewrite its .md beside it; run nothing")
	fs.Bool("version", false, "print the version (from the build information) and exit")
	envName := func(flagName string) string {
		if flagName == "version" {
			return ""
		}
		return config.EnvNameWith(envPrefix, flagName)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: inkbench [flags]\n\nRuns inkstream's benchmark against the binaries in -bin and writes -out/<name>.md and -out/<name>.json, with its charts beside them (-out/<name>-*.svg).")
		fmt.Fprintf(stderr, "Every flag also reads %s<FLAG> (upper case, '-' as '_').\n", envPrefix)
		config.PrintFlags(stderr, fs, envName)
	}
	if err := config.ApplyEnv(fs, getenv, envName); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := config.PrintVersion(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *serviceEnv != "" {
		for _, kv := range strings.Split(*serviceEnv, ",") {
			if !strings.Contains(kv, "=") {
				return fmt.Errorf("-service-env: %q is not NAME=value", kv)
			}
			cfg.ServiceEnv = append(cfg.ServiceEnv, strings.TrimSpace(kv))
		}
	}
	if *memory != "" {
		for _, f := range strings.Split(*memory, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
			if err != nil {
				return fmt.Errorf("-memory-articles: %w", err)
			}
			cfg.MemoryArticles = append(cfg.MemoryArticles, n)
		}
	}
	if *redraw != "" {
		return Redraw(*redraw, stdout)
	}
	_, err := Run(ctx, cfg)
	return err
}

// Redraw draws the charts of the results in file (a .json that Run wrote)
// again beside it, rewrites its .md, and prints the .md.
func Redraw(file string, out io.Writer) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	base := strings.TrimSuffix(file, ".json")
	charts, err := writeCharts(base, rep)
	if err != nil {
		return err
	}
	md := markdown(rep) + chartsSection(charts)
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprint(out, md)
	return err
}

func commandLine(args []string) string {
	parts := []string{os.Args[0]}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// The parts of the measurement (-only).
const (
	partLoads   = "loads"
	partReplay  = "replay"
	partMemory  = "memory"
	partCluster = "cluster"
)

var (
	allParts     = []string{partLoads, partReplay, partMemory, partCluster}
	defaultParts = []string{partLoads, partReplay}
)

// parts are the parts -only names, in the order they run.
func parts(only string) ([]string, error) {
	if strings.TrimSpace(only) == "" {
		return defaultParts, nil
	}
	want := map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "all":
			for _, a := range allParts {
				want[a] = true
			}
		case slices.Contains(allParts, p):
			want[p] = true
		default:
			return nil, fmt.Errorf("-only %q: want loads, replay, memory, cluster or all, comma-separated", only)
		}
	}
	var out []string
	for _, p := range allParts {
		if want[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// defaultMemoryArticles are the rows of the memory part.
var defaultMemoryArticles = []int{100_000, 1_000_000}

// defaults fills what the mode decides and checks the rest.
func (c *Config) defaults() error {
	d, replayTimeout, events, articles := 10*time.Second, 4*time.Minute, 1_000_000, 100_000
	memory := defaultMemoryArticles
	if c.Short {
		d, replayTimeout, events, articles = 3*time.Second, time.Minute, 100_000, 10_000
		memory = []int{10_000, 100_000}
	}
	if len(c.MemoryArticles) == 0 {
		c.MemoryArticles = memory
	}
	if c.ContentBytes == 0 {
		c.ContentBytes = 5000
	}
	if c.BulkConns == 0 {
		c.BulkConns = 4
	}
	if c.BulkSize == 0 {
		c.BulkSize = 1000
	}
	if c.Duration == 0 {
		c.Duration = d
	}
	if c.ReplayEvents == 0 {
		c.ReplayEvents = events
	}
	if c.ColdArticles == 0 {
		c.ColdArticles = min(articles, c.ReplayEvents)
	}
	if c.ReplayTimeout == 0 {
		c.ReplayTimeout = replayTimeout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	var errs []error
	if c.Runs < 1 {
		errs = append(errs, errors.New("-runs must be at least 1"))
	}
	if c.Duration < 100*time.Millisecond {
		errs = append(errs, errors.New("-duration must be at least 100ms"))
	}
	if c.Conns < 1 || c.Conns > 1024 {
		errs = append(errs, errors.New("-conns must be 1 to 1024"))
	}
	if c.SeedArticles < c.Conns {
		errs = append(errs, fmt.Errorf("-seed-articles must be at least -conns (%d): each PUT connection updates its own articles", c.Conns))
	}
	if c.VisibilityRate < 0 {
		errs = append(errs, errors.New("-visibility-rate must be 0 (half the PUT rate) or more"))
	}
	if c.BulkConns < 1 || c.BulkConns > 64 {
		errs = append(errs, errors.New("-bulk-conns must be 1 to 64"))
	}
	if c.BulkSize < 1 || c.BulkSize > 1000 {
		errs = append(errs, errors.New("-bulk-size must be 1 to 1000 (JetStream's atomic batch limit, the command API's -bulk-max)"))
	}
	if !slices.IsSorted(c.MemoryArticles) || c.MemoryArticles[0] < 1 {
		errs = append(errs, errors.New("-memory-articles must be ascending counts of at least 1"))
	}
	if c.ContentBytes < 1 || c.ContentBytes > 100_000 {
		errs = append(errs, errors.New("-content-bytes must be 1 to 100 000 (the longest content an article may have)"))
	}
	if c.ColdArticles < 1 || c.ReplayEvents < c.ColdArticles {
		errs = append(errs, errors.New("-cold-articles must be at least 1 and at most -replay-events (each article gets replay-events/cold-articles events)"))
	}
	if ps, err := parts(c.Only); err != nil {
		errs = append(errs, err)
	} else {
		c.parts = ps
	}
	if c.ReplayTimeout < time.Second {
		errs = append(errs, errors.New("-replay-timeout must be at least 1s"))
	}
	if c.BinDir == "" {
		c.BinDir = "./bin"
	}
	if c.Publish {
		c.OutDir = "./bench"
		if c.Name == "" {
			c.Name = "results"
			if !slices.Equal(c.parts, defaultParts) && c.parts != nil {
				c.Name += "-" + strings.Join(c.parts, "-")
			}
		}
	}
	if c.OutDir == "" {
		c.OutDir = "./bench/runs"
	}
	abs, err := filepath.Abs(c.BinDir)
	if err != nil {
		errs = append(errs, err)
	}
	c.BinDir = abs
	for _, name := range []string{"nats-server", "command-api", "projector", "query-api", "inkstream", "inkbench"} {
		if st, err := os.Stat(filepath.Join(c.BinDir, name)); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("%s is missing from %s: run `make build` (or pass -bin)", name, c.BinDir))
		}
	}
	return errors.Join(errs...)
}

// warmup is the unmeasured lead-in of each load.
func (c *Config) warmup() time.Duration { return min(c.Duration/5, time.Second) }

func (c *Config) bin(name string) string { return filepath.Join(c.BinDir, name) }

func (c *Config) mode() string {
	mode := "custom"
	switch {
	case c.Short:
		mode = "short"
	case c.Duration == 10*time.Second && c.ReplayEvents == 1_000_000 && c.ColdArticles == 100_000 &&
		slices.Equal(c.MemoryArticles, defaultMemoryArticles) && c.ContentBytes == 5000 && c.BulkSize == 1000:
		mode = "full"
	}
	if !slices.Equal(c.parts, defaultParts) {
		mode += ", " + strings.Join(c.parts, ", ") + " only"
	}
	return mode
}

// runs reports whether the part is to run.
func (c *Config) runs(part string) bool { return slices.Contains(c.parts, part) }

// Run runs the benchmark cfg.Runs times, writes <Name>.md and <Name>.json
// to cfg.OutDir, prints the table and returns the report. Every process it
// starts is stopped before it returns, also on error and when ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	rep := &Report{Meta: meta(cfg, began)}
	name := cfg.Name
	if name == "" {
		name = began.UTC().Format("20060102T150405Z")
	}
	var prof *profiler
	if cfg.Pprof {
		prof = newProfiler(logf)
		rep.Meta.Profiles = name + "-profiles"
	}
	machine := readMachineCPU()
	for i := range cfg.Runs {
		r := &runner{cfg: &cfg, prof: prof, logf: func(format string, args ...any) {
			logf("run %d/%d: %s", i+1, cfg.Runs, fmt.Sprintf(format, args...))
		}}
		res, times, err := r.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("run %d/%d: %w", i+1, cfg.Runs, err)
		}
		rep.Runs = append(rep.Runs, res)
		for j, t := range times {
			if i == 0 {
				rep.Meta.PartSeconds = append(rep.Meta.PartSeconds, t)
			} else if j < len(rep.Meta.PartSeconds) {
				rep.Meta.PartSeconds[j].Seconds += t.Seconds
			}
		}
	}
	rep.Meta.LoadAvgEnd = loadAvg()
	if others, ok := machine.othersSince(); ok {
		rep.Meta.OthersCPUS = others.Seconds()
		rep.Meta.OthersCores = others.Seconds() / time.Since(began).Seconds()
	}
	rep.Median = median(rep.Runs)
	rep.Targets = judged(rep.Median, rep.Meta)
	rep.Meta.ElapsedS = time.Since(began).Round(100 * time.Millisecond).Seconds()
	if err := prof.write(filepath.Join(cfg.OutDir, rep.Meta.Profiles)); err != nil {
		return nil, fmt.Errorf("write profiles: %w", err)
	}
	md, err := write(filepath.Join(cfg.OutDir, name), *rep)
	if err != nil {
		return nil, fmt.Errorf("write results: %w", err)
	}
	fmt.Fprint(cfg.Out, md)
	logf("wrote %s.md and %s.json", filepath.Join(cfg.OutDir, name), filepath.Join(cfg.OutDir, name))
	return rep, nil
}
