package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started. Its output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once it has exited and been reaped
	err  error         // Wait's result; valid after done

	mu        sync.Mutex
	rssKiB    int64 // VmHWM, read before the process is stopped
	signalled bool  // the harness asked it to stop
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// peakRSS reads the process's peak resident set size (VmHWM) now and keeps
// the largest value read so far. It returns it in KiB (0 if unknown).
func (p *proc) peakRSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited() {
		if v, err := readVmHWM(p.pid()); err == nil && v > p.rssKiB {
			p.rssKiB = v
		}
	}
	return p.rssKiB
}

// diedError describes a process that exited while the harness needed it.
func (p *proc) diedError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.name, p.err, p.log, tail(p.log, 20))
}

// procs starts child processes and stops every one of them, in reverse
// order of start, on stopAll, which the harness defers, so they are killed
// on success, on error and on Ctrl-C alike.
type procs struct {
	dir     string // log files
	env     []string
	logf    func(format string, args ...any)
	onStart func(name string, pid int)

	mu     sync.Mutex
	list   []*proc
	warned bool // a process misbehaved on stop: keep the logs
}

func (ps *procs) warn(format string, args ...any) {
	ps.mu.Lock()
	ps.warned = true
	ps.mu.Unlock()
	ps.logf("warning: "+format, args...)
}

// keepLogs reports whether a process misbehaved, so its log matters.
func (ps *procs) keepLogs() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.warned
}

func newProcs(dir string, logf func(string, ...any), onStart func(string, int)) *procs {
	return &procs{dir: dir, env: childEnv(), logf: logf, onStart: onStart}
}

// childEnv is this process's environment without the variables the
// services read (INKSTREAM_*, NATS_URL), so only the harness's flags apply.
// GOMAXPROCS, GOGC and the like pass through.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "INKSTREAM_") || strings.HasPrefix(kv, "NATS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs bin with args; name labels its log file and its RSS figure.
func (ps *procs) start(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(ps.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = ps.env
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	if ps.onStart != nil {
		ps.onStart(name, p.pid())
	}
	return p, nil
}

// stop asks p to shut down (SIGTERM), kills it after grace and waits until
// it has exited. It reads its peak RSS first. A non-zero exit that the
// harness did not cause by killing is reported in the progress log.
func (ps *procs) stop(p *proc, grace time.Duration) {
	if p == nil {
		return
	}
	p.peakRSS()
	p.mu.Lock()
	already := p.signalled
	p.signalled = true
	p.mu.Unlock()
	if p.exited() {
		if !already && p.err != nil {
			ps.warn("%s had exited by itself: %v (log %s)", p.name, p.err, p.log)
		}
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		// Killed by the SIGTERM itself: it came before the process had
		// installed its handler, just after its start. Not a fault.
		if p.err != nil && !terminatedBy(p, syscall.SIGTERM) {
			ps.warn("%s exited with %v after SIGTERM (log %s)", p.name, p.err, p.log)
		}
	case <-t.C:
		ps.warn("%s did not stop within %s of SIGTERM; killing it (log %s)", p.name, grace, p.log)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func terminatedBy(p *proc, sig syscall.Signal) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// stopAll stops every process still running, the last started first.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		ps.stop(list[i], grace)
	}
}

// readVmHWM returns the peak resident set size of a process in KiB.
func readVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
}

// tail returns about the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
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

// errTimeout is what poll's error wraps when its timeout passed.
var errTimeout = errors.New("not done")

// poll calls try every interval until it reports done, p (when not nil)
// exits, the timeout passes or ctx ends. what names the wait in errors.
func poll(ctx context.Context, p *proc, what string, interval, timeout time.Duration, try func() (bool, error)) error {
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
			return fmt.Errorf("%s: %w", what, p.diedError())
		case <-deadline.C:
			if lastErr != nil {
				return fmt.Errorf("%s: %w after %s; last error: %v", what, errTimeout, timeout, lastErr)
			}
			return fmt.Errorf("%s: %w after %s", what, errTimeout, timeout)
		case <-tick.C:
		}
	}
}

var probeClient = &http.Client{Timeout: time.Second}

// waitReady polls http://addr/readyz until it answers 200 and returns how
// long that took from since.
func waitReady(ctx context.Context, p *proc, addr string, since time.Time, interval, timeout time.Duration) (time.Duration, error) {
	url := "http://" + addr + "/readyz"
	var took time.Duration
	err := poll(ctx, p, p.name+" /readyz", interval, timeout, func() (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			took = time.Since(since)
			return true, nil
		}
		return false, fmt.Errorf("%s answered %s", url, resp.Status)
	})
	return took, err
}
