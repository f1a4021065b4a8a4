package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

// runBoth is run with its stdout and stderr both going to w.
func runBoth(ctx context.Context, args []string, getenv func(string) string, w io.Writer) error {
	return run(ctx, args, getenv, w, w)
}

// devArgs are the flags of an all-in-one on free ports with its store in dir.
func devArgs(dir, natsListen string) []string {
	return []string{"-data-dir", dir, "-nats-listen", natsListen, "-nats-monitor=",
		"-command-listen", "127.0.0.1:0", "-query-listen", "127.0.0.1:0", "-projector-listen", "127.0.0.1:0"}
}

// TestHelpOfEachCommand: -h of the all-in-one and of each subcommand is
// flag.ErrHelp with the usage of that command: the admin commands dial a
// NATS server and give up after a while, the all-in-one embeds its own and
// lists the subcommands.
func TestHelpOfEachCommand(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"rebuild", "-h"}, {"verify", "-h"}, {"provision", "-h"}, {"creds", "-h"}} {
		want := []string{"-data-dir", "Subcommands"}
		switch args[0] {
		case "rebuild", "verify", "provision":
			want = []string{"-nats-url", "-connect-timeout"}
		case "creds":
			want = []string{"-dir"}
		}
		cmdtest.Help(t, runBoth, args, want...)
	}
}

func TestBadConfigurationIsAnError(t *testing.T) {
	dir := t.TempDir()
	cmdtest.BadConfig(t, runBoth,
		cmdtest.BadConfigCase{Name: "body limit not a number", Args: []string{"-body-limit=abc"}, Mention: "body-limit"},
		cmdtest.BadConfigCase{Name: "batch 0", Args: []string{"-batch=0"}, Mention: "batch"},
		cmdtest.BadConfigCase{Name: "versions 0", Args: []string{"-versions=0"}, Mention: "versions"},
		cmdtest.BadConfigCase{Name: "empty data dir", Args: []string{"-data-dir="}, Mention: "data-dir"},
		cmdtest.BadConfigCase{Name: "NATS listen without a port", Args: append(devArgs(dir, "127.0.0.1:0"), "-nats-listen=localhost"), Mention: "nats-listen"},
		cmdtest.BadConfigCase{Name: "NATS listen port not a number", Args: append(devArgs(dir, "127.0.0.1:0"), "-nats-listen=127.0.0.1:http"), Mention: "nats-listen"},
		cmdtest.BadConfigCase{Name: "env body limit not a number", Env: []string{"INKSTREAM_BODY_LIMIT=abc"}, Mention: "INKSTREAM_BODY_LIMIT"},
		cmdtest.BadConfigCase{Name: "env min-seq-wait not a duration", Env: []string{"INKSTREAM_MIN_SEQ_WAIT=soon"}, Mention: "INKSTREAM_MIN_SEQ_WAIT"},
		cmdtest.BadConfigCase{Name: "verify with a bad batch", Args: []string{"verify", "-batch=abc"}, Mention: "batch"},
	)
}

func TestBusyPortFailsAtStart(t *testing.T) {
	for _, flagName := range []string{"-nats-listen", "-nats-monitor", "-command-listen", "-query-listen", "-projector-listen"} {
		t.Run(flagName, func(t *testing.T) {
			addr := cmdtest.BusyAddr(t)
			cmdtest.AddrInUse(t, runBoth, addr, append(devArgs(t.TempDir(), "127.0.0.1:0"), flagName, addr), cmdtest.Env())
		})
	}
	// The environment is read too (the embedded server starts first, so
	// the default role ports are never bound).
	addr := cmdtest.BusyAddr(t)
	cmdtest.AddrInUse(t, runBoth, addr, []string{"-data-dir", t.TempDir()}, cmdtest.Env("INKSTREAM_NATS_LISTEN="+addr, "INKSTREAM_NATS_MONITOR="))
}

var (
	commandURL = regexp.MustCompile(`command_api=(\S+)`)
	queryURL   = regexp.MustCompile(`query_api=(\S+)`)
	natsURL    = regexp.MustCompile(`nats=(\S+)`)
)

// dev is one run of the all-in-one in the background.
type dev struct {
	*cmdtest.Background
	cmd, query   string
	natsHostPort string
	token        string // an editor's, from `inkstream token`
}

// startDev runs the all-in-one until it is stopped or the test ends, and
// waits until it serves.
func startDev(tb testing.TB, args []string) *dev {
	tb.Helper()
	d := &dev{Background: cmdtest.Start(tb, runBoth, args, cmdtest.Env())}
	m := d.WaitLog(tb, 30*time.Second, commandURL, queryURL, natsURL)
	u, err := url.Parse(m[2])
	if err != nil {
		tb.Fatal(err)
	}
	d.cmd, d.query, d.natsHostPort = m[0], m[1], u.Host
	d.token = devToken(tb, args, "-sub", "eve", "-roles", "editor")
	systest.WaitReady(tb, &http.Client{Timeout: 10 * time.Second}, d.query)
	return d
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
		a := post(t, c, d, fmt.Sprintf("Kept %d", i))
		if i == 2 {
			r, err := systest.Do(c, http.MethodPatch, d.cmd+"/api/articles/"+a.ID, map[string]any{"content": "v2"}, "Content-Type", "application/merge-patch+json", "Authorization", "Bearer "+d.token)
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("PATCH: %v %d %s", err, r.Status, r.Body)
			}
			r.JSON(t, &a)
			a.seq = r.Seq()
		}
		want[a.ID] = a
	}
	d.StopCleanly(t, d.cmd)

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
		// redelivery: AckWait is 10s).
		natstest.WaitFor(t, 40*time.Second, func() error {
			got, tag, err := get(id)
			if err == nil && (got != a || tag != fmt.Sprintf(`"%d"`, a.Version)) {
				err = fmt.Errorf("GET %s after restart: %s %+v, want %+v", id, tag, got, a)
			}
			return err
		})
	}
	if err := d2.Stop(t); err != nil {
		t.Fatalf("second run after cancel: %v\n%s", err, d2.Out.String())
	}
}
