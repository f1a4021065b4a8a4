package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

// syncBuffer collects the log of a run while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a getenv that knows only the given name=value pairs.
func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// busyAddr holds a listening port for the rest of the test.
func busyAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// runBriefly calls run, which must return on its own, within a deadline.
func runBriefly(tb testing.TB, args []string, getenv func(string) string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	err := run(ctx, args, getenv, &out)
	if ctx.Err() != nil {
		tb.Fatalf("run %v did not return before its context ended (err %v)", args, err)
	}
	return out.String(), err
}

func TestHelpListsFlags(t *testing.T) {
	out, err := runBriefly(t, []string{"-h"}, env())
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	for _, f := range []string{"-listen", "-nats-url", "-body-limit", "-write-timeout", "-command-cache", "-stream-replicas", "-log-level", "INKSTREAM_", "NATS_URL"} {
		if !strings.Contains(out, f) {
			t.Errorf("-h output lacks %s:\n%s", f, out)
		}
	}
}

func TestBadConfigurationIsAnError(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		env     []string
		mention string // the error names the flag or variable
	}{
		{"body limit not a number", []string{"-body-limit=abc"}, nil, "body-limit"},
		{"body limit too small", []string{"-body-limit=10"}, nil, "body-limit"},
		{"write timeout not a duration", []string{"-write-timeout=soon"}, nil, "write-timeout"},
		{"log level unknown", []string{"-log-level=loud"}, nil, "log-level"},
		{"log format unknown", []string{"-log-format=xml"}, nil, "log-format"},
		{"replicas 0", []string{"-stream-replicas=0"}, nil, "stream-replicas"},
		{"unknown flag", []string{"-no-such-flag"}, nil, "no-such-flag"},
		{"stray argument", []string{"serve"}, nil, "serve"},
		{"env body limit not a number", nil, []string{"INKSTREAM_BODY_LIMIT=abc"}, "INKSTREAM_BODY_LIMIT"},
		{"env write timeout not a duration", nil, []string{"INKSTREAM_WRITE_TIMEOUT=soon"}, "INKSTREAM_WRITE_TIMEOUT"},
		{"env cache negative", nil, []string{"INKSTREAM_COMMAND_CACHE=-1"}, "command-cache"},
		{"env provision not a bool", nil, []string{"INKSTREAM_PROVISION=maybe"}, "INKSTREAM_PROVISION"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := runBriefly(t, c.args, env(c.env...))
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run %v %v: %v, want a configuration error", c.args, c.env, err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not name %s", err, c.mention)
			}
		})
	}
}

func TestBusyPortFailsAtStart(t *testing.T) {
	addr := busyAddr(t)
	// No NATS server: the port is checked before NATS is dialled.
	for name, c := range map[string]struct {
		args []string
		env  func(string) string
	}{
		"flag": {[]string{"-listen", addr, "-nats-url", "nats://127.0.0.1:1"}, env()},
		"env":  {nil, env("INKSTREAM_LISTEN="+addr, "NATS_URL=nats://127.0.0.1:1")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runBriefly(t, c.args, c.env)
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("run on busy %s: %v, want EADDRINUSE", addr, err)
			}
		})
	}
}

var listening = regexp.MustCompile(`msg="command API listening" addr=(\S+)`)

// TestServesAndStopsCleanly starts the command API against a real NATS
// (URL from NATS_URL), writes an article, and stops it by cancelling the
// context, as SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, env("NATS_URL="+srv.URL()), &out) }()

	var base string
	natstest.WaitFor(t, 20*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, out.String())
		default:
		}
		m := listening.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("not listening yet:\n%s", out.String())
		}
		base = "http://" + m[1]
		return nil
	})
	c := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		r, err := systest.Do(c, http.MethodGet, base+path, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET %s: %v %d %s", path, err, r.Status, r.Body)
		}
	}
	r, err := systest.Do(c, http.MethodPost, base+"/api/articles", map[string]any{"title": "Hi", "content": "c", "author_id": "a"})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of cancel")
	}
	if _, err := systest.Do(c, http.MethodGet, base+"/healthz", nil); err == nil {
		t.Fatal("still serving after run returned")
	}
}
