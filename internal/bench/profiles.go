package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// profiler captures CPU profiles of the processes under load (-pprof):
// during each timed load, of every process that serves /debug/pprof. It
// keeps them per load and process, merging the slices of a load that runs
// in turns (and the runs of -runs), and writes them, with a README of
// their top functions, to <out>/<name>-profiles/<load>/<process>.pprof.
// A nil profiler (no -pprof) does nothing.
type profiler struct {
	logf func(string, ...any)

	mu      sync.Mutex
	loads   []string                                 // in the order first profiled
	got     map[string]map[string][]*profile.Profile // load → process → slices
	skipped map[string]string                        // load → why it has no profile
	errs    []string
}

func newProfiler(logf func(string, ...any)) *profiler {
	return &profiler{logf: logf, got: map[string]map[string][]*profile.Profile{}, skipped: map[string]string{}}
}

// profileMargin is what a profile leaves of its span: the request has to
// reach the process, and the profile must end before the span does (the
// next slice of a load in turns is another load's).
func profileMargin(d time.Duration) time.Duration { return max(d/10, 100*time.Millisecond) }

// maxProfile keeps a profile request within the services' 30 s write
// timeout.
const maxProfile = 25 * time.Second

// span starts a CPU profile of each of ps that serves pprof for d less a
// margin, in whole seconds (the unit /debug/pprof/profile takes), and
// returns a function that waits for them. A span too short for a second
// is not profiled.
func (pr *profiler) span(ctx context.Context, load string, d time.Duration, ps ...*proc) (wait func()) {
	if pr == nil {
		return func() {}
	}
	secs := min(d-profileMargin(d), maxProfile) / time.Second
	if secs < 1 {
		pr.skip(load, fmt.Sprintf("its measured spans (%s) are shorter than the 1 s a profile takes; a longer -duration profiles it", d))
		return func() {}
	}
	return eachServing(ps, func(p *proc) {
		prof, err := cpuProfile(ctx, p.pprofURL, int(secs))
		pr.keep(ctx, load, p, prof, err)
	})
}

// eachServing runs f at once for each of ps that serves pprof and returns
// a function that waits for them.
func eachServing(ps []*proc, f func(p *proc)) (wait func()) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.pprofURL != "" {
			wg.Go(func() { f(p) })
		}
	}
	return wg.Wait
}

// during profiles each of ps that serves pprof in back-to-back one-second
// profiles, for spans whose length is not known in advance (the first
// PUTs, the projector's catch-up, the rebuild), until stop is called; stop
// waits for the last (the processes are idle in its tail, which adds
// hardly any samples). A process that does not answer yet (it is
// starting) is asked again 50 ms later. stop may be called more than once.
func (pr *profiler) during(ctx context.Context, load string, ps ...*proc) (stop func()) {
	if pr == nil {
		return func() {}
	}
	stopc := make(chan struct{})
	wait := eachServing(ps, func(p *proc) {
		var lastErr error
		defer func() { pr.keep(ctx, load, p, nil, lastErr) }()
		for {
			select {
			case <-stopc:
				return
			case <-ctx.Done():
				return
			default:
			}
			if p.Exited() {
				return
			}
			prof, err := cpuProfile(ctx, p.pprofURL, 1)
			if err == nil {
				pr.keep(ctx, load, p, prof, nil)
				lastErr = nil
				continue
			}
			lastErr = err
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-stopc:
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(stopc) })
		wait()
	}
}

// skip records why load has no profile.
func (pr *profiler) skip(load, why string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if _, ok := pr.skipped[load]; !ok && pr.got[load] == nil {
		pr.skipped[load] = why
	}
}

var profileClient = &http.Client{Timeout: maxProfile + 10*time.Second}

// keep keeps a profile of load taken of p, or notes why it failed (err;
// nothing when ctx ended, or with neither).
func (pr *profiler) keep(ctx context.Context, load string, p *proc, prof *profile.Profile, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			pr.errs = append(pr.errs, fmt.Sprintf("%s, %s: %v", load, p.Name, err))
		}
		return
	}
	if prof == nil {
		return
	}
	if pr.got[load] == nil {
		pr.got[load] = map[string][]*profile.Profile{}
		pr.loads = append(pr.loads, load)
		delete(pr.skipped, load)
	}
	pr.got[load][p.Name] = append(pr.got[load][p.Name], prof)
}

// cpuProfile GETs base/debug/pprof/profile?seconds=secs and parses it.
func cpuProfile(ctx context.Context, base string, secs int) (*profile.Profile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return nil, err
	}
	resp, err := profileClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return profile.ParseData(b)
}

// write merges each load's profiles per process into dir/<load>/<process>.pprof
// and writes dir/README.md with their top functions.
func (pr *profiler) write(dir string) error {
	if pr == nil {
		return nil
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var md strings.Builder
	fmt.Fprintf(&md, "# CPU profiles\n\n")
	fmt.Fprintf(&md, "CPU profiles (`/debug/pprof/profile`) of every process that serves pprof, taken during each load's measured span "+
		"(less a margin; a load in turns: each of its slices, merged; every run of -runs merged), "+
		"or in back-to-back one-second profiles for spans of unknown length (first PUTs, projector catch-up, rebuild). "+
		"Shares are of the profile's samples; flat: in the function itself, cumulative: in it and what it calls. "+
		"The load generator and the raw Fiber baseline serve no pprof and are not profiled; `inkstream rebuild` writes its own profile of the whole run (-cpuprofile).\n")
	var errs []error
	for _, load := range pr.loads {
		fmt.Fprintf(&md, "\n## %s\n", load)
		procs := make([]string, 0, len(pr.got[load]))
		for name := range pr.got[load] {
			procs = append(procs, name)
		}
		sort.Strings(procs)
		for _, name := range procs {
			p, err := profile.Merge(pr.got[load][name])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, %s: merge: %w", load, name, err))
				continue
			}
			file := filepath.Join(dir, load, name+".pprof")
			if err := writeProfile(file, p); err != nil {
				errs = append(errs, err)
				continue
			}
			rel := filepath.Join(load, name+".pprof")
			fmt.Fprintf(&md, "\n### %s\n\n`go tool pprof -http=: %s` (from this directory)\n\n", name, rel)
			md.WriteString(topTables(p))
		}
	}
	if len(pr.skipped) > 0 {
		md.WriteString("\n## Not profiled\n\n")
		for _, load := range slices.Sorted(maps.Keys(pr.skipped)) {
			fmt.Fprintf(&md, "- %s: %s\n", load, pr.skipped[load])
		}
	}
	if len(pr.errs) > 0 {
		md.WriteString("\n## Profiles that failed\n\n")
		for _, e := range pr.errs {
			fmt.Fprintf(&md, "- %s\n", e)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "README.md"), []byte(md.String()), 0o644))
	pr.logf("CPU profiles in %s", dir)
	return errors.Join(errs...)
}

func writeProfile(file string, p *profile.Profile) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	return f.Close()
}

// funcShare is one function's CPU in a profile.
type funcShare struct {
	name      string
	flat, cum int64
}

// topFuncs sums a CPU profile's samples (its CPU time, the last sample
// value) per function: flat where the function is the leaf, cumulative
// where it is anywhere on the stack (once per sample). It returns the
// functions and the total.
func topFuncs(p *profile.Profile) ([]funcShare, int64) {
	vi := len(p.SampleType) - 1
	byName := map[string]*funcShare{}
	var total int64
	get := func(name string) *funcShare {
		f := byName[name]
		if f == nil {
			f = &funcShare{name: name}
			byName[name] = f
		}
		return f
	}
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		seen := map[string]bool{}
		for i, loc := range s.Location {
			lines := loc.Line
			if len(lines) == 0 {
				lines = []profile.Line{{}}
			}
			for j, ln := range lines {
				name := fmt.Sprintf("0x%x", loc.Address)
				if ln.Function != nil {
					name = ln.Function.Name
				}
				// The leaf is the first line of the first location.
				if i == 0 && j == 0 {
					get(name).flat += v
				}
				if !seen[name] {
					seen[name] = true
					get(name).cum += v
				}
			}
		}
	}
	out := make([]funcShare, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	return out, total
}

// topTables is the top 12 functions of p by flat share and the top 8 by
// cumulative share, as Markdown.
func topTables(p *profile.Profile) string {
	funcs, total := topFuncs(p)
	var b strings.Builder
	if total == 0 {
		return "No samples: the process was idle.\n"
	}
	unit := p.SampleType[len(p.SampleType)-1].Unit
	fmt.Fprintf(&b, "%s of CPU in %d samples.\n", sampleTotal(total, unit), len(p.Sample))
	table := func(title string, n int, key func(funcShare) int64) {
		slices.SortFunc(funcs, func(a, b funcShare) int {
			if c := key(b) - key(a); c != 0 {
				if c > 0 {
					return 1
				}
				return -1
			}
			return strings.Compare(a.name, b.name)
		})
		fmt.Fprintf(&b, "\n| %s | flat | cum |\n|---|--:|--:|\n", title)
		for _, f := range funcs[:min(n, len(funcs))] {
			if key(f) == 0 {
				break
			}
			fmt.Fprintf(&b, "| `%s` | %.1f%% | %.1f%% |\n", f.name, 100*float64(f.flat)/float64(total), 100*float64(f.cum)/float64(total))
		}
	}
	table("top 12 by flat", 12, func(f funcShare) int64 { return f.flat })
	table("top 8 by cumulative", 8, func(f funcShare) int64 { return f.cum })
	return b.String()
}

// sampleTotal formats a total of a CPU profile's sample value.
func sampleTotal(v int64, unit string) string {
	if unit == "nanoseconds" {
		return time.Duration(v).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%d %s", v, unit)
}

// readProfile parses the profile a process wrote to file.
func readProfile(file string) (*profile.Profile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return profile.Parse(f)
}
