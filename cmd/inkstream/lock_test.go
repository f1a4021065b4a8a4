package main

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/systest"
)

// post creates a published article through the command API of d, as an
// editor, so that anyone may read it.
func post(tb testing.TB, c *http.Client, d *dev, title string) article {
	tb.Helper()
	r, err := systest.Do(c, http.MethodPost, d.cmd+"/api/articles", map[string]any{"title": title, "content": "v1", "author_id": "alice", "status": "published"},
		"Authorization", "Bearer "+d.token)
	if err != nil || r.Status != http.StatusCreated {
		tb.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
	}
	var a article
	r.JSON(tb, &a)
	a.seq = r.Seq()
	return a
}

// TestSecondAllInOneOnTheSameDirectoryFails runs an all-in-one, then a
// second on the same data directory: the second fails at once, naming
// the directory, before it starts a NATS server on the store. The first
// keeps serving, and every write it acknowledged, before and after,
// survives its restart. A start that fails lets go of the lock.
func TestSecondAllInOneOnTheSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	c := &http.Client{Timeout: 10 * time.Second}

	busy := cmdtest.BusyAddr(t)
	if _, err := cmdtest.RunBriefly(t, runBoth, append(devArgs(dir, "127.0.0.1:0"), "-query-listen", busy), cmdtest.Env()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("start on a busy port: %v, want EADDRINUSE", err)
	}

	d := startDev(t, devArgs(dir, "127.0.0.1:0"))
	before := post(t, c, d, "Before the second")

	out, err := cmdtest.RunBriefly(t, runBoth, devArgs(dir, "127.0.0.1:0"), cmdtest.Env())
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second all-in-one on %s: %v, want an error saying the directory is in use\n%s", dir, err, out)
	}
	if strings.Contains(out, "embedded NATS JetStream listening") {
		t.Fatalf("the second all-in-one started a NATS server on the store:\n%s", out)
	}

	after := post(t, c, d, "After the second")
	d.StopCleanly(t, d.cmd)

	d2 := startDev(t, devArgs(dir, "127.0.0.1:0"))
	for _, a := range []article{before, after} {
		r, err := systest.Do(c, http.MethodGet, d2.query+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(a.seq, 10))
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET %s after restart: %v %d %s", a.ID, err, r.Status, r.Body)
		}
		var got article
		r.JSON(t, &got)
		if got.Title != a.Title || got.Version != a.Version {
			t.Fatalf("after restart %+v, want %+v", got, a)
		}
	}
	if err := d2.Stop(t); err != nil {
		t.Fatalf("restarted all-in-one: %v\n%s", err, d2.Out.String())
	}
}
