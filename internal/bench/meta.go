package bench

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// meta describes the machine, the toolchain and the invocation.
func meta(cfg Config, began time.Time) Meta {
	m := Meta{
		Date:           began.UTC().Format(time.RFC3339),
		GoVersion:      goVersion(),
		BinaryGo:       "unknown",
		CPU:            "unknown",
		Cores:          runtime.NumCPU(),
		GOMAXPROCS:     runtime.GOMAXPROCS(0),
		Command:        cfg.Command,
		ServiceEnv:     cfg.ServiceEnv,
		Mode:           cfg.mode(),
		Only:           cfg.Only,
		Parts:          cfg.parts,
		LoadAvg:        loadAvg(),
		Runs:           cfg.Runs,
		DurationS:      cfg.Duration.Seconds(),
		WarmupS:        cfg.warmup().Seconds(),
		Connections:    cfg.Conns,
		SeedArticles:   cfg.SeedArticles,
		VisibilityRate: cfg.VisibilityRate,
		BulkConns:      cfg.BulkConns,
		BulkSize:       cfg.BulkSize,
		ReplayEvents:   cfg.ReplayEvents,
		ColdArticles:   cfg.ColdArticles,
	}
	if cfg.runs(partMemory) {
		m.MemoryArticles, m.ContentBytes = cfg.MemoryArticles, cfg.ContentBytes
	}
	if bi, err := buildinfo.ReadFile(cfg.bin("query-api")); err == nil {
		m.BinaryGo = bi.GoVersion
	}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			m.Cores = len(cpus)
			if cpus[0].ModelName != "" {
				m.CPU = cpus[0].ModelName
			}
		}
	}
	return m
}

// goVersion is the output of `go version`, or this binary's Go version
// when no go command is at hand.
func goVersion() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return runtime.Version() + " (no go command; the version inkbench was built with)"
	}
	return strings.TrimSpace(string(out))
}

// loadAvg is the system's load average over 1, 5 and 15 minutes, as
// /proc/loadavg has it ("" if unknown): how busy the shared machine was.
func loadAvg() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return ""
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.2f, %.2f, %.2f", l.Load1, l.Load5, l.Load15)
}

// machineCPU is a reading of how much CPU the whole machine, and this
// process with its children, had used: their difference over a run is
// what other processes took from the run (the machine is shared).
type machineCPU struct {
	busy, ours time.Duration
	ok         bool
}

func readMachineCPU() machineCPU {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return machineCPU{}
	}
	st, err := fs.Stat()
	if err != nil {
		return machineCPU{}
	}
	t := st.CPUTotal
	busy := time.Duration((t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal) * float64(time.Second))
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return machineCPU{}
	}
	tv := func(v syscall.Timeval) time.Duration { return time.Duration(v.Nano()) }
	ours := tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
	return machineCPU{busy: busy, ours: ours, ok: true}
}

// othersSince is the CPU time other processes used since m, once every
// child has exited (a child's time counts when it has been waited for).
func (m machineCPU) othersSince() (time.Duration, bool) {
	now := readMachineCPU()
	if !m.ok || !now.ok {
		return 0, false
	}
	return max((now.busy-m.busy)-(now.ours-m.ours), 0), true
}
