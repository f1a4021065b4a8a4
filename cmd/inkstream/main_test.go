package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
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
	err := run(ctx, args, getenv, &out, &out)
	if ctx.Err() != nil {
		tb.Fatalf("run %v did not return before its context ended (err %v)", args, err)
	}
	return out.String(), err
}

// devArgs are the flags of an all-in-one on free ports with its store in dir.
func devArgs(dir, natsListen string) []string {
	return []string{"-data-dir", dir, "-nats-listen", natsListen, "-nats-monitor=",
		"-command-listen", "127.0.0.1:0", "-query-listen", "127.0.0.1:0", "-projector-listen", "127.0.0.1:0"}
}

func TestHelpListsFlags(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"rebuild", "-h"}, {"verify", "-h"}} {
		out, err := runBriefly(t, args, env())
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: %v, want flag.ErrHelp", args, err)
		}
		want := []string{"-nats-url", "-batch", "INKSTREAM_"} // rebuild and verify dial a NATS server
		if args[0] != "rebuild" && args[0] != "verify" {
			// The all-in-one embeds its server.
			want = []string{"-data-dir", "-nats-listen", "-nats-monitor", "-command-listen", "-query-listen", "-projector-listen", "-body-limit", "-batch", "-versions", "INKSTREAM_"}
		}
		for _, f := range want {
			if !strings.Contains(out, f) {
				t.Errorf("%v output lacks %s:\n%s", args, f, out)
			}
		}
	}
}

func TestBadConfigurationIsAnError(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		args    []string
		env     []string
		mention string // the error names the flag or variable
	}{
		{"body limit not a number", []string{"-body-limit=abc"}, nil, "body-limit"},
		{"batch 0", []string{"-batch=0"}, nil, "batch"},
		{"versions 0", []string{"-versions=0"}, nil, "versions"},
		{"empty data dir", []string{"-data-dir="}, nil, "data-dir"},
		{"NATS listen without a port", append(devArgs(dir, "127.0.0.1:0"), "-nats-listen=localhost"), nil, "nats-listen"},
		{"NATS listen port not a number", append(devArgs(dir, "127.0.0.1:0"), "-nats-listen=127.0.0.1:http"), nil, "nats-listen"},
		{"unknown flag", []string{"-no-such-flag"}, nil, "no-such-flag"},
		{"env body limit not a number", nil, []string{"INKSTREAM_BODY_LIMIT=abc"}, "INKSTREAM_BODY_LIMIT"},
		{"env min-seq-wait not a duration", nil, []string{"INKSTREAM_MIN_SEQ_WAIT=soon"}, "INKSTREAM_MIN_SEQ_WAIT"},
		{"verify with a bad batch", []string{"verify", "-batch=abc"}, nil, "batch"},
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
	for _, flagName := range []string{"-nats-listen", "-nats-monitor", "-command-listen", "-query-listen", "-projector-listen"} {
		t.Run(flagName, func(t *testing.T) {
			addr := busyAddr(t)
			args := append(devArgs(t.TempDir(), "127.0.0.1:0"), flagName, addr)
			_, err := runBriefly(t, args, env())
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("run with %s on busy %s: %v, want EADDRINUSE", flagName, addr, err)
			}
		})
	}
	// The environment is read too (the embedded server starts first, so
	// the default role ports are never bound).
	addr := busyAddr(t)
	if _, err := runBriefly(t, []string{"-data-dir", t.TempDir()}, env("INKSTREAM_NATS_LISTEN="+addr, "INKSTREAM_NATS_MONITOR=")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("INKSTREAM_NATS_LISTEN on busy %s: %v, want EADDRINUSE", addr, err)
	}
}

var (
	commandURL = regexp.MustCompile(`command_api=(\S+)`)
	queryURL   = regexp.MustCompile(`query_api=(\S+)`)
	natsURL    = regexp.MustCompile(`nats=(\S+)`)
)

// dev is one run of the all-in-one in the background.
type dev struct {
	cancel       context.CancelFunc
	done         chan struct{} // closed when run has returned
	err          error         // what run returned; valid after done
	out          *syncBuffer
	cmd, query   string
	natsHostPort string
}

// startDev runs the all-in-one until stop and waits until it serves.
func startDev(tb testing.TB, args []string) *dev {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &dev{cancel: cancel, done: make(chan struct{}), out: &syncBuffer{}}
	go func() {
		defer close(d.done)
		d.err = run(ctx, args, env(), d.out, d.out)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
		}
	})
	natstest.WaitFor(tb, 30*time.Second, func() error {
		select {
		case <-d.done:
			tb.Fatalf("run returned early: %v\n%s", d.err, d.out.String())
		default:
		}
		log := d.out.String()
		c, q, n := commandURL.FindStringSubmatch(log), queryURL.FindStringSubmatch(log), natsURL.FindStringSubmatch(log)
		if c == nil || q == nil || n == nil {
			return fmt.Errorf("not running yet:\n%s", log)
		}
		u, err := url.Parse(n[1])
		if err != nil {
			return err
		}
		d.cmd, d.query, d.natsHostPort = c[1], q[1], u.Host
		return nil
	})
	c := &http.Client{Timeout: 10 * time.Second}
	natstest.WaitFor(tb, 30*time.Second, func() error {
		r, err := systest.Do(c, http.MethodGet, d.query+"/readyz", nil)
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("query API /readyz: %d %s", r.Status, r.Body)
		}
		return nil
	})
	return d
}

// stop cancels the run, as SIGINT does, and returns what run returned.
func (d *dev) stop(tb testing.TB) error {
	tb.Helper()
	d.cancel()
	select {
	case <-d.done:
		return d.err
	case <-time.After(20 * time.Second):
		tb.Fatalf("run did not return within 20s of cancel:\n%s", d.out.String())
		return nil
	}
}

type article struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Content string `json:"content"`
	Version int    `json:"version"`
	seq     uint64 // X-Event-Seq of its last write
}

// TestCtrlCStopsCleanlyAndRestartKeepsArticles writes articles to the
// all-in-one, stops it by cancelling its context (what Ctrl-C does): run
// returns nil and frees its ports. Started again on the same data
// directory and NATS port, it serves every article at its version.
func TestCtrlCStopsCleanlyAndRestartKeepsArticles(t *testing.T) {
	dir := t.TempDir()
	c := &http.Client{Timeout: 10 * time.Second}
	d := startDev(t, devArgs(dir, "127.0.0.1:0"))
	want := map[string]article{}
	for i := 0; i < 3; i++ {
		r, err := systest.Do(c, http.MethodPost, d.cmd+"/api/articles", map[string]any{"title": fmt.Sprintf("Kept %d", i), "content": "v1", "author_id": "alice"})
		if err != nil || r.Status != http.StatusCreated {
			t.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
		}
		var a article
		r.JSON(t, &a)
		a.seq = r.Seq()
		if i == 2 {
			r, err = systest.Do(c, http.MethodPatch, d.cmd+"/api/articles/"+a.ID, map[string]any{"content": "v2"}, "Content-Type", "application/merge-patch+json")
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("PATCH: %v %d %s", err, r.Status, r.Body)
			}
			r.JSON(t, &a)
			a.seq = r.Seq()
		}
		want[a.ID] = a
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("run after cancel: %v\n%s", err, d.out.String())
	}
	if _, err := systest.Do(c, http.MethodGet, d.cmd+"/healthz", nil); err == nil {
		t.Fatal("command API still serving after run returned")
	}

	// Same data directory and the same NATS port: the first run let go of both.
	d2 := startDev(t, devArgs(dir, d.natsHostPort))
	get := func(id string, headers ...string) (article, string, error) {
		r, err := systest.Do(c, http.MethodGet, d2.query+"/api/articles/"+id, nil, headers...)
		if err != nil {
			return article{}, "", err
		}
		if r.Status != http.StatusOK {
			return article{}, "", fmt.Errorf("GET %s after restart: %d %s", id, r.Status, r.Body)
		}
		var got article
		r.JSON(t, &got)
		return got, r.Header.Get("ETag"), nil
	}
	for id, a := range want {
		// With the write's token the answer is exact at once.
		got, tag, err := get(id, "X-Min-Event-Seq", strconv.FormatUint(a.seq, 10))
		a.seq = 0
		if err != nil || got != a || tag != fmt.Sprintf(`"%d"`, a.Version) {
			t.Fatalf("GET %s with its token after restart: %v %s %+v, want %+v", id, err, tag, got, a)
		}
		// Without it, once the projector has caught up (at worst after a
		// redelivery: AckWait is 30s).
		natstest.WaitFor(t, 40*time.Second, func() error {
			got, tag, err := get(id)
			if err == nil && (got != a || tag != fmt.Sprintf(`"%d"`, a.Version)) {
				err = fmt.Errorf("GET %s after restart: %s %+v, want %+v", id, tag, got, a)
			}
			return err
		})
	}
	if err := d2.stop(t); err != nil {
		t.Fatalf("second run after cancel: %v\n%s", err, d2.out.String())
	}
}
