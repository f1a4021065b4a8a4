package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

// binary builds cmd/inkstream once per test process and returns its path.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "inkstream-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "inkstream")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// inkstream runs the built binary with args and env (added to this
// process's) until it exits, and returns its exit status and output.
func inkstream(tb testing.TB, env []string, args ...string) (int, string, time.Duration) {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), took
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode(), out.String(), took
	}
	tb.Fatalf("inkstream %v: %v\n%s", args, err, out.String())
	return 0, "", 0
}

// TestExitStatus runs the built binary: usage errors exit 2; verify exits
// 0 on a consistent read model, 1 on differences, 2 when it could not run
// (an unreachable server, within -connect-timeout); more replicas than the
// all-in-one's single node fail at once.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		says string
	}{
		{[]string{"-no-such-flag"}, nil, 2, "no-such-flag"},
		{[]string{"no-such-command"}, nil, 2, "unknown subcommand"},
		{[]string{"verify", "-connect-timeout", "soon"}, nil, 2, "connect-timeout"},
		{[]string{"rebuild", "stray"}, nil, 2, "stray"},
		{[]string{"-h"}, nil, 0, "Subcommands"},
		{[]string{"-data-dir", t.TempDir()}, []string{"INKSTREAM_STREAM_REPLICAS=3"}, 2, "single node"},
	} {
		code, out, _ := inkstream(t, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("inkstream %v (%v): exit %d, want %d and a message with %q:\n%s", tc.args, tc.env, code, tc.code, tc.says, out)
		}
	}

	code, out, took := inkstream(t, nil, "verify", "-nats-url", cmdtest.UnreachableNATS, "-connect-timeout", "1s")
	if code != 2 || took > 10*time.Second || !strings.Contains(out, "within 1s") {
		t.Errorf("verify against nothing: exit %d after %v, want 2 within the timeout:\n%s", code, took, out)
	}

	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(systest.Body(1))
	s.WaitProjected(20 * time.Second)
	code, out, took = inkstream(t, nil, "verify", "-nats-url", natstest.StripCredentials(s.URL), "-nats-user", "admin", "-nats-password", "not-the-password")
	if code != 2 || took > 5*time.Second || !strings.Contains(strings.ToLower(out), "authorization violation") || strings.Contains(out, "not-the-password") {
		t.Errorf("verify with a wrong password: exit %d after %v, want 2 at once, the password hidden:\n%s", code, took, out)
	}
	if code, out, _ := inkstream(t, nil, "verify", "-nats-url", s.URL); code != 0 || !strings.Contains(out, "1 articles, 0 differences") {
		t.Errorf("verify of a consistent read model: exit %d, want 0:\n%s", code, out)
	}
	if err := s.Res.KV.Delete(natstest.Context(t), a.ID); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := inkstream(t, nil, "verify", "-nats-url", s.URL); code != 1 || !strings.Contains(out, a.ID+": missing") {
		t.Errorf("verify of a read model with a snapshot missing: exit %d, want 1:\n%s", code, out)
	}
}

// TestCredsMakesPrivateFilesAndKeepsThem runs `inkstream creds` twice
// into one directory: every file is its owner's alone, the seeds stay.
func TestCredsMakesPrivateFilesAndKeepsThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	var seeds []byte
	for range 2 {
		if code, out, _ := inkstream(t, nil, "creds", "-dir", dir, "-nats-url", "nats://h1:4222,nats://h2:4222"); code != 0 {
			t.Fatalf("creds: exit %d:\n%s", code, out)
		}
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("the directory: %v %v, want 0700", st.Mode(), err)
		}
		var all []byte
		for _, f := range []string{"admin.nk", "command-api.nk", "projector.nk", "query-api.nk", "sys.nk", "accounts.conf", "admin.json", "sys.json"} {
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, want a file 0600", f, err)
			}
			if strings.HasSuffix(f, ".nk") {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				all = append(all, b...)
			}
		}
		if seeds != nil && !bytes.Equal(seeds, all) {
			t.Fatal("a second run changed the seeds")
		}
		seeds = all
	}
	if code, out, _ := inkstream(t, nil, "creds"); code != 2 || !strings.Contains(out, "-dir") {
		t.Fatalf("creds without -dir: exit %d, want 2:\n%s", code, out)
	}
}

// TestSIGTERMStopsCleanly runs the all-in-one binary (monitoring off by
// an empty INKSTREAM_NATS_MONITOR), stops it with SIGTERM: it exits 0 and
// its last log line says "stopped".
func TestSIGTERMStopsCleanly(t *testing.T) {
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-data-dir", t.TempDir(), "-nats-listen", "127.0.0.1:0",
		"-command-listen", "127.0.0.1:0", "-query-listen", "127.0.0.1:0", "-projector-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "INKSTREAM_NATS_MONITOR=")
	var out cmdtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	natstest.WaitFor(t, 30*time.Second, func() error {
		if !strings.Contains(out.String(), "inkstream is running") {
			return errors.New("not running yet:\n" + out.String())
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if err != nil || !strings.Contains(lines[len(lines)-1], "msg=stopped") {
			t.Fatalf("after SIGTERM: %v, last line %q, want exit 0 after \"stopped\":\n%s", err, lines[len(lines)-1], out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM:\n%s", out.String())
	}
}

// terminal is a pseudo-terminal: what the program writes to tty, the test
// reads from Out.
type terminal struct {
	tty *os.File
	ptm *os.File
	Out cmdtest.SyncBuffer
}

func newTerminal(tb testing.TB) *terminal {
	tb.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		tb.Fatal(err)
	}
	t := &terminal{tty: tty, ptm: ptm}
	go func() { _, _ = io.Copy(&t.Out, ptm) }()
	tb.Cleanup(func() { tty.Close(); ptm.Close() })
	return t
}

// TestRebuildAsksOnATerminal runs `inkstream rebuild` with a terminal for
// its standard streams: it asks first, and a "no" changes nothing; a
// "yes" rebuilds, showing a progress bar. With -yes it does not ask.
func TestRebuildAsksOnATerminal(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(systest.Body(1))
	s.WaitProjected(20 * time.Second)
	ctx := natstest.Context(t)
	revision := func() uint64 {
		e, err := s.Res.KV.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	before := revision()
	rebuild := func(answer string, args ...string) (string, error) {
		term := newTerminal(t)
		done := make(chan error, 1)
		go func() {
			done <- runIO(ctx, append([]string{"rebuild", "-nats-url", s.URL, "-log-level", "error"}, args...), cmdtest.Env(), term.tty, term.tty, term.tty)
		}()
		if answer != "" {
			natstest.WaitFor(t, 20*time.Second, func() error {
				if !strings.Contains(term.Out.String(), "Continue? [y/N]") {
					return errors.New("no question yet:\n" + term.Out.String())
				}
				return nil
			})
			if _, err := term.ptm.WriteString(answer + "\n"); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			natstest.WaitFor(t, 5*time.Second, func() error {
				if err == nil && !strings.Contains(term.Out.String(), "rebuild: done") {
					return errors.New("output incomplete:\n" + term.Out.String())
				}
				return nil
			})
			return term.Out.String(), err
		case <-time.After(time.Minute):
			t.Fatalf("rebuild still runs after a minute:\n%s", term.Out.String())
			return "", nil
		}
	}
	if out, err := rebuild("n"); !errors.Is(err, app.ErrNotConfirmed) || revision() != before {
		t.Fatalf("rebuild answered no: %v, snapshot revision %d (was %d):\n%s", err, revision(), before, out)
	}
	out, err := rebuild("y")
	if err != nil || !strings.Contains(out, "100%") || !strings.Contains(out, "rebuild: done") {
		t.Fatalf("rebuild answered yes: %v; want a bar to 100%% and done:\n%s", err, out)
	}
	after := revision()
	if after == before {
		t.Fatal("rebuild did not write the snapshot anew")
	}
	if out, err := rebuild("", "-yes"); err != nil || strings.Contains(out, "Continue?") {
		t.Fatalf("rebuild -yes: %v, want no question:\n%s", err, out)
	}
}
