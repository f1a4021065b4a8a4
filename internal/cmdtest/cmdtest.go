// Package cmdtest holds what the tests of inkstream's commands (cmd/...)
// share: they call a command's run function with arguments, an
// environment and a log writer of their choosing, check how it refuses
// help requests, bad configuration and busy ports, and run it in the
// background until they stop it as SIGINT does.
package cmdtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
)

// RunFunc is the run function of a command's main package: it runs the
// command with args (without the program name) and the environment
// getenv, logs to stderr, and returns when it fails or ctx ends.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error

// Timeout bounds how long a run may take to return on its own or after
// its context is cancelled.
const Timeout = 20 * time.Second

// UnreachableNATS is a NATS URL nothing listens on.
const UnreachableNATS = "nats://127.0.0.1:1"

// SyncBuffer collects the log of a run while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Env returns a getenv that knows only the given name=value pairs.
func Env(pairs ...string) func(string) string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// BusyAddr holds a listening port for the rest of the test and returns
// its address.
func BusyAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// RunBriefly calls run, which must return on its own within Timeout, and
// returns its log and error.
func RunBriefly(tb testing.TB, run RunFunc, args []string, getenv func(string) string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var out SyncBuffer
	err := run(ctx, args, getenv, &out)
	if ctx.Err() != nil {
		tb.Fatalf("run %v did not return before its context ended (err %v)", args, err)
	}
	return out.String(), err
}

// Help checks that run, given args that ask for help (such as -h),
// returns flag.ErrHelp and that its usage mentions each of want.
func Help(tb testing.TB, run RunFunc, args []string, want ...string) {
	tb.Helper()
	out, err := RunBriefly(tb, run, args, Env())
	if !errors.Is(err, flag.ErrHelp) {
		tb.Fatalf("%v: %v, want flag.ErrHelp", args, err)
	}
	for _, f := range want {
		if !strings.Contains(out, f) {
			tb.Errorf("%v output lacks %s:\n%s", args, f, out)
		}
	}
}

// CommandLine checks, in subtests of t, the command line of a role: -h
// is flag.ErrHelp (an exit 0) with a usage; a configuration it cannot read
// is an error that names what is wrong (BadConfig; internal/config tests
// each flag's values); and the address it listens on is bound before NATS
// is dialled (BusyPort, with flagName and envName).
func CommandLine(t *testing.T, run RunFunc, flagName, envName string) {
	t.Helper()
	t.Run("help", func(t *testing.T) { Help(t, run, []string{"-h"}, "Usage") })
	t.Run("bad configuration", func(t *testing.T) {
		BadConfig(t, run, BadConfigCase{Name: "env replicas not a number", Env: []string{"INKSTREAM_STREAM_REPLICAS=three"}, Mention: "INKSTREAM_STREAM_REPLICAS"})
	})
	t.Run("busy port", func(t *testing.T) { BusyPort(t, run, flagName, envName) })
}

// BadConfigCase is a configuration that run must refuse.
type BadConfigCase struct {
	Name    string
	Args    []string
	Env     []string // name=value pairs, the whole environment
	Mention string   // what the error must name: the flag or variable
}

// BadConfig runs each case, and a case with an unknown flag, in a subtest
// of t and checks that run refuses it with an error, not flag.ErrHelp,
// that names the case's Mention.
func BadConfig(t *testing.T, run RunFunc, cases ...BadConfigCase) {
	t.Helper()
	cases = append(cases, BadConfigCase{Name: "unknown flag", Args: []string{"-no-such-flag"}, Mention: "no-such-flag"})
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := RunBriefly(t, run, c.Args, Env(c.Env...))
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run %v %v: %v, want a configuration error", c.Args, c.Env, err)
			}
			if !strings.Contains(err.Error(), c.Mention) {
				t.Errorf("error %q does not name %s", err, c.Mention)
			}
		})
	}
}

// AddrInUse checks that run, given args and getenv that make it listen on
// addr, which another listener holds, fails with EADDRINUSE.
func AddrInUse(tb testing.TB, run RunFunc, addr string, args []string, getenv func(string) string) {
	tb.Helper()
	if _, err := RunBriefly(tb, run, args, getenv); !errors.Is(err, syscall.EADDRINUSE) {
		tb.Fatalf("run %v on busy %s: %v, want EADDRINUSE", args, addr, err)
	}
}

// BusyPort checks, in subtests of t, that a role command fails at start
// with EADDRINUSE when the address it listens on, given by the flag
// flagName or else by the variable envName, is busy. No NATS server runs:
// the NATS URL (-nats-url or NATS_URL, as the address is given) is
// UnreachableNATS, so the port must be checked before NATS is dialled.
func BusyPort(t *testing.T, run RunFunc, flagName, envName string) {
	t.Helper()
	addr := BusyAddr(t)
	t.Run("flag", func(t *testing.T) {
		AddrInUse(t, run, addr, []string{flagName, addr, "-nats-url", UnreachableNATS}, Env())
	})
	t.Run("env", func(t *testing.T) {
		AddrInUse(t, run, addr, nil, Env(envName+"="+addr, "NATS_URL="+UnreachableNATS))
	})
}

// Background is one run of a command in the background, started by Start.
type Background struct {
	Out    *SyncBuffer // the run's log
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // what run returned; valid after done
}

// Start calls run with args and getenv in the background, logging to the
// returned Background's Out. When the test ends the run is cancelled and
// awaited for up to Timeout.
func Start(tb testing.TB, run RunFunc, args []string, getenv func(string) string) *Background {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{Out: &SyncBuffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = run(ctx, args, getenv, b.Out)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(Timeout):
		}
	})
	return b
}

// WaitLog waits up to timeout until the log matches every one of res and
// returns the first submatch of each, in order. It fails the test if run
// returns first.
func (b *Background) WaitLog(tb testing.TB, timeout time.Duration, res ...*regexp.Regexp) []string {
	tb.Helper()
	var subs []string
	natstest.WaitFor(tb, timeout, func() error {
		select {
		case <-b.done:
			tb.Fatalf("run returned early: %v\n%s", b.err, b.Out.String())
		default:
		}
		log := b.Out.String()
		subs = subs[:0]
		for _, re := range res {
			m := re.FindStringSubmatch(log)
			if m == nil {
				return fmt.Errorf("log does not match %s yet:\n%s", re, log)
			}
			subs = append(subs, m[1])
		}
		return nil
	})
	return subs
}

// Stop cancels the run, as SIGINT does, and returns what run returned. It
// fails the test if run does not return within Timeout.
func (b *Background) Stop(tb testing.TB) error {
	tb.Helper()
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-time.After(Timeout):
		tb.Fatalf("run did not return within %v of cancel:\n%s", Timeout, b.Out.String())
		return nil
	}
}

// StopCleanly stops the run, which must return nil, and checks that
// nothing answers on base (http://host:port) any more.
func (b *Background) StopCleanly(tb testing.TB, base string) {
	tb.Helper()
	if err := b.Stop(tb); err != nil {
		tb.Fatalf("run after cancel: %v\n%s", err, b.Out.String())
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if resp, err := c.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		tb.Fatalf("%s still serving after run returned", base)
	}
}

// Server is a command serving HTTP in the background, started by Serve.
type Server struct {
	*Background
	Base   string       // http://host:port, where it serves
	Client *http.Client // a client with a 10s timeout
}

// Serve starts run with args and getenv, like Start, and waits up to
// Timeout until it logs that it listens: msg="<listening>" addr=host:port.
func Serve(tb testing.TB, run RunFunc, listening string, args []string, getenv func(string) string) *Server {
	tb.Helper()
	b := Start(tb, run, args, getenv)
	re := regexp.MustCompile(`msg="` + regexp.QuoteMeta(listening) + `" addr=(\S+)`)
	return &Server{Background: b, Base: "http://" + b.WaitLog(tb, Timeout, re)[0], Client: &http.Client{Timeout: 10 * time.Second}}
}

// OpsOK GETs /healthz, /readyz and /metrics from the server and returns
// an error unless each answers 200 OK.
func (s *Server) OpsOK() error {
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := s.Client.Get(s.Base + path)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	return nil
}
