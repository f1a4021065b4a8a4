package bench

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
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
