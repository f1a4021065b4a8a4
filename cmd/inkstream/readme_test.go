package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

// natsCLIVersion is the NATS CLI the README names.
const natsCLIVersion = "v0.5.0"

// natsCLI returns the directory of the NATS CLI, built once into the
// user's cache directory with `go install` (from the Go module proxy).
func natsCLI(tb testing.TB) string {
	tb.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "inkstream-test", "natscli-"+natsCLIVersion)
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/nats-io/natscli/nats@"+natsCLIVersion)
	cmd.Dir = dir // outside this module
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go install the NATS CLI: %v\n%s", err, out)
	}
	return dir
}

// readmeSection returns the shell lines of the code blocks of the
// README's section titled heading, as written.
func readmeSection(tb testing.TB, heading string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		tb.Fatalf("README has no section %q", heading)
	}
	text = text[start+len(heading)+2:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	var lines []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		for line := range strings.Lines(block[1]) {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, strings.TrimRight(line, "\n"))
			}
		}
	}
	return lines
}

// ptyProcess is a process whose controlling terminal is a
// pseudo-terminal: Ctrl-C typed into it signals its foreground job.
type ptyProcess struct {
	cmd  *exec.Cmd
	ptm  *os.File
	Out  cmdtest.SyncBuffer
	done chan error
}

func startOnTerminal(tb testing.TB, cmd *exec.Cmd) *ptyProcess {
	tb.Helper()
	ptm, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		tb.Fatal(err)
	}
	p := &ptyProcess{cmd: cmd, ptm: ptm, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&p.Out, ptm); close(copied) }()
	go func() {
		err := cmd.Wait()
		select { // what it wrote last, before the terminal closes
		case <-copied:
		case <-time.After(2 * time.Second):
		}
		p.done <- err
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		ptm.Close()
	})
	return p
}

func (p *ptyProcess) wait(tb testing.TB, timeout time.Duration) error {
	tb.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		tb.Fatalf("%v still runs after %v:\n%s", p.cmd.Args, timeout, p.Out.String())
		return nil
	}
}

// TestMakeRunTheNATSCLISectionAndCtrlC runs `make run` on a terminal with
// a fresh data directory, writes an article, then runs the commands of
// the README's NATS CLI section as written, with the real NATS CLI, once
// piped and once on a terminal: each succeeds. Then Ctrl-C on make's
// terminal stops inkstream, whose last log line says "stopped", and make
// exits 0.
func TestMakeRunTheNATSCLISectionAndCtrlC(t *testing.T) {
	cli := natsCLI(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	mk := exec.Command("make", "run", "BIN="+filepath.Join(work, "bin"))
	mk.Dir = root
	// Not a sub-make of `make test`: as a person types it.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKE") && !strings.HasPrefix(kv, "MFLAGS=") {
			environ = append(environ, kv)
		}
	}
	mk.Env = append(environ, "TERM=dumb", "INKSTREAM_DATA_DIR="+filepath.Join(work, "data"),
		"INKSTREAM_NATS_LISTEN=127.0.0.1:0", "INKSTREAM_NATS_MONITOR=", "INKSTREAM_COMMAND_LISTEN=127.0.0.1:0",
		"INKSTREAM_QUERY_LISTEN=127.0.0.1:0", "INKSTREAM_PROJECTOR_LISTEN=127.0.0.1:0")
	run := startOnTerminal(t, mk)
	running := regexp.MustCompile(`command_api=(\S+)`)
	var cmdAPI string
	natstest.WaitFor(t, 5*time.Minute, func() error {
		select {
		case err := <-run.done:
			t.Fatalf("make run ended: %v\n%s", err, run.Out.String())
		default:
		}
		m := running.FindStringSubmatch(run.Out.String())
		if m == nil {
			return errors.New("make run is not running yet:\n" + run.Out.String())
		}
		cmdAPI = m[1]
		return nil
	})
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	token := devToken(t, []string{"-data-dir", filepath.Join(work, "data")}, "-sub", "ada", "-roles", "author")
	w, err := systest.Do(client, http.MethodPost, cmdAPI+"/api/articles", map[string]any{"title": "Seen by the CLI", "content": "c", "author_id": "ada"},
		"Authorization", "Bearer "+token)
	if err != nil || w.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, w.Status, w.Body)
	}
	var a struct{ ID string }
	w.JSON(t, &a)

	lines := readmeSection(t, "## Inspect events with the NATS CLI")
	if len(lines) < 5 || !strings.HasPrefix(lines[0], "export NATS_CONTEXT=") {
		t.Fatalf("the section's first step is not the NATS_CONTEXT export: %q", lines)
	}
	script := "set -euo pipefail\n" + strings.Join(lines, "\n") + "\n"
	env := []string{"PATH=" + cli + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + work,
		"XDG_CONFIG_HOME=" + filepath.Join(work, "config"), "ID=" + a.ID, "TERM=xterm"}
	check := func(how, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("the README's NATS CLI section, %s: %v\n%s", how, err, out)
		}
		for _, want := range []string{"Information for Stream ARTICLES", "articles." + a.ID + ".created", "Seen by the CLI", "Information for Consumer ARTICLES > projector"} {
			if !strings.Contains(out, want) {
				t.Fatalf("the README's NATS CLI section, %s, printed no %q:\n%s", how, want, out)
			}
		}
	}
	piped := exec.Command("bash", "-c", script)
	piped.Dir, piped.Env = work, env
	var out bytes.Buffer
	piped.Stdout, piped.Stderr = &out, &out
	err = piped.Run()
	check("piped", out.String(), err)
	onTerminal := exec.Command("bash", "-c", script)
	onTerminal.Dir, onTerminal.Env = work, env
	term := startOnTerminal(t, onTerminal)
	err = term.wait(t, 2*time.Minute)
	check("on a terminal", term.Out.String(), err)

	if _, err := run.ptm.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	err = run.wait(t, time.Minute)
	log := strings.TrimSpace(strings.ReplaceAll(run.Out.String(), "\r", ""))
	last := log[strings.LastIndex(log, "\n")+1:]
	if err != nil || !strings.Contains(last, "msg=stopped") || strings.Contains(log, "make: ***") {
		t.Fatalf("make run after Ctrl-C: %v (want exit 0), last line %q (want stopped):\n%s", err, last, log)
	}
}
