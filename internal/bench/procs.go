package bench

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/inkstream/inkstream/internal/procs"
)

// proc is a child process the harness started, with its peak RSS.
type proc struct {
	*procs.Proc

	// pprofURL, with -pprof, is where it serves /debug/pprof
	// (http://host:port).
	pprofURL string

	mu     sync.Mutex
	rssKiB int64 // VmHWM, read before the process is stopped
}

// peakRSS reads the process's peak resident set size (VmHWM) now and keeps
// the largest value read so far. It returns it in KiB (0 if unknown).
func (p *proc) peakRSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.Exited() {
		if v, err := readVmHWM(p.Pid()); err == nil && v > p.rssKiB {
			p.rssKiB = v
		}
	}
	return p.rssKiB
}

// children are the processes of one run. The harness defers stopAll, so
// they are stopped, in reverse order of start, on success, on error and on
// Ctrl-C alike.
type children struct {
	group procs.Group
	logf  func(format string, args ...any)
	// serviceEnv is added to the environment of inkstream's own
	// processes (-service-env), not to nats-server's or the baselines'.
	serviceEnv []string

	mu     sync.Mutex
	warned bool // a process misbehaved on stop: keep the logs
}

func newChildren(dir string, logf func(string, ...any), onStart func(string, int), serviceEnv []string) *children {
	c := &children{group: procs.Group{Dir: dir, Env: childEnv()}, logf: logf, serviceEnv: serviceEnv}
	if onStart != nil {
		c.group.OnStart = func(p *procs.Proc) { onStart(p.Name, p.Pid()) }
	}
	return c
}

// childEnv is this process's environment without the variables the
// services read (INKSTREAM_*, NATS_URL), so only the harness's flags apply.
// GOMAXPROCS, GOGC and the like pass through.
func childEnv() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "INKSTREAM_") || strings.HasPrefix(kv, "NATS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs bin with args; name labels its log file and its RSS figure.
func (c *children) start(name, bin string, args ...string) (*proc, error) {
	var env []string
	switch filepath.Base(bin) {
	case "command-api", "projector", "query-api", "inkstream":
		env = c.serviceEnv
	}
	p, err := c.group.Start(name, bin, args, env)
	if err != nil {
		return nil, err
	}
	return &proc{Proc: p}, nil
}

// stop reads p's peak RSS, then stops it (see procs.Proc.Stop). How it
// misbehaved, if it did, goes to the progress log.
func (c *children) stop(p *proc, grace time.Duration) {
	if p == nil {
		return
	}
	p.peakRSS()
	c.report(p.Proc, p.Stop(grace))
}

// stopAll stops every process still running, the last started first.
func (c *children) stopAll(grace time.Duration) { c.group.StopAll(grace, c.report) }

func (c *children) report(p *procs.Proc, err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.warned = true
	c.mu.Unlock()
	c.logf("warning: %s %v (log %s)", p.Name, err, p.Log)
}

// keep keeps the logs of the run: something in them matters.
func (c *children) keep() {
	c.mu.Lock()
	c.warned = true
	c.mu.Unlock()
}

// keepLogs reports whether a process misbehaved, so its log matters.
func (c *children) keepLogs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warned
}

// readVmHWM returns the peak resident set size of a process in KiB.
func readVmHWM(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(st.VmHWM / 1024), nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls http://addr/readyz until it answers 200 and returns how
// long that took from since.
func waitReady(ctx context.Context, p *proc, addr string, since time.Time, interval, timeout time.Duration) (time.Duration, error) {
	if err := procs.WaitHTTP(ctx, p.Proc, "http://"+addr+"/readyz", interval, timeout); err != nil {
		return 0, err
	}
	return time.Since(since), nil
}
