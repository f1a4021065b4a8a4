// Package procs starts child processes with their output in log files,
// waits for them to be ready and stops them in order: the process code of
// the local cluster supervisor (internal/cluster) and of the benchmark
// harness (internal/bench).
package procs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process whose output goes to a log file.
type Proc struct {
	Name string
	Log  string // path of the log file

	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and been reaped
	err  error         // Wait's result; valid after done

	mu       sync.Mutex
	stopping bool // Stop has been called
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended: nil for exit status 0, else an
// *exec.ExitError ("exit status 1", "signal: killed"). Valid after Done.
func (p *Proc) Err() error { return p.err }

// Usage is the CPU time (user and system) the process used and its peak
// resident set size in KiB, once it has exited (zero before).
func (p *Proc) Usage() (cpu time.Duration, maxRSSKiB int64) {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return 0, 0
	}
	st := p.cmd.ProcessState
	return st.UserTime() + st.SystemTime(), maxRSS(st)
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// DiedError describes the process having exited while it was needed, with
// the last lines of its log.
func (p *Proc) DiedError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.Name, p.err, p.Log, p.Tail(20))
}

// Tail returns about the last n lines of the log, indented.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "  " + strings.Join(lines[max(len(lines)-n, 0):], "\n  ")
}

// Stop asks the process to shut down (SIGTERM), kills it after grace and
// waits until it has exited. It returns nil when the process exits with
// status 0, or dies of that SIGTERM (sent before it had installed its
// handler, just after its start). Otherwise the error says how it ended,
// also when it had exited by itself before. A second Stop waits for the
// process and returns nil.
func (p *Proc) Stop(grace time.Duration) error {
	p.mu.Lock()
	again := p.stopping
	p.stopping = true
	p.mu.Unlock()
	if again {
		<-p.done
		return nil
	}
	if p.Exited() {
		if p.err != nil {
			return fmt.Errorf("had exited by itself: %w", p.err)
		}
		return nil
	}
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); p.err != nil && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
			return fmt.Errorf("exited with %w after SIGTERM", p.err)
		}
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s of SIGTERM; killed it", grace)
	}
}

// Group starts processes and stops them, the last started first.
type Group struct {
	Dir     string      // log files: Dir/<name>.log
	Env     []string    // environment of every process; nil: this process's
	OnStart func(*Proc) // if set, told of every process started

	mu   sync.Mutex
	list []*Proc
}

// Start runs bin with args; env is added to g.Env. name labels the log file.
func (g *Group) Start(name, bin string, args, env []string) (*Proc, error) {
	logPath := filepath.Join(g.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = g.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(slices.Clip(cmd.Env), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	g.mu.Lock()
	g.list = append(g.list, p)
	g.mu.Unlock()
	if g.OnStart != nil {
		g.OnStart(p)
	}
	return p, nil
}

// StopAll stops every process (see Proc.Stop), the last started first, and
// tells report, if not nil, how each ended.
func (g *Group) StopAll(grace time.Duration, report func(p *Proc, err error)) {
	g.mu.Lock()
	list := append([]*Proc(nil), g.list...)
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		err := list[i].Stop(grace)
		if report != nil {
			report(list[i], err)
		}
	}
}

// ErrTimeout is what Poll's error wraps when its timeout passed.
var ErrTimeout = errors.New("not done")

// Poll calls try every interval until it reports done, p (when not nil)
// exits, the timeout passes or ctx ends. what names the wait in errors.
func Poll(ctx context.Context, p *Proc, what string, interval, timeout time.Duration, try func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var exited <-chan struct{}
	if p != nil {
		exited = p.done
	}
	var lastErr error
	for {
		ok, err := try()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-exited:
			return fmt.Errorf("%s: %w", what, p.DiedError())
		case <-deadline.C:
			if lastErr != nil {
				return fmt.Errorf("%s: %w after %s; last error: %v", what, ErrTimeout, timeout, lastErr)
			}
			return fmt.Errorf("%s: %w after %s", what, ErrTimeout, timeout)
		case <-tick.C:
		}
	}
}

var probeClient = &http.Client{Timeout: time.Second}

// WaitHTTP polls url until it answers 200 (see Poll).
func WaitHTTP(ctx context.Context, p *Proc, url string, interval, timeout time.Duration) error {
	return Poll(ctx, p, p.Name+" "+url, interval, timeout, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return true, nil
	})
}
