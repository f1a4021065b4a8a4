package main

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestHelpListsFlags(t *testing.T) {
	cmdtest.Help(t, run, []string{"-h"}, "-listen", "-nats-url", "-body-limit", "-write-timeout", "-command-cache", "-stream-replicas", "-log-level", "INKSTREAM_", "NATS_URL")
}

func TestBadConfigurationIsAnError(t *testing.T) {
	cmdtest.BadConfig(t, run,
		cmdtest.BadConfigCase{Name: "body limit not a number", Args: []string{"-body-limit=abc"}, Mention: "body-limit"},
		cmdtest.BadConfigCase{Name: "body limit too small", Args: []string{"-body-limit=10"}, Mention: "body-limit"},
		cmdtest.BadConfigCase{Name: "write timeout not a duration", Args: []string{"-write-timeout=soon"}, Mention: "write-timeout"},
		cmdtest.BadConfigCase{Name: "log level unknown", Args: []string{"-log-level=loud"}, Mention: "log-level"},
		cmdtest.BadConfigCase{Name: "log format unknown", Args: []string{"-log-format=xml"}, Mention: "log-format"},
		cmdtest.BadConfigCase{Name: "replicas 0", Args: []string{"-stream-replicas=0"}, Mention: "stream-replicas"},
		cmdtest.BadConfigCase{Name: "stray argument", Args: []string{"serve"}, Mention: "serve"},
		cmdtest.BadConfigCase{Name: "env body limit not a number", Env: []string{"INKSTREAM_BODY_LIMIT=abc"}, Mention: "INKSTREAM_BODY_LIMIT"},
		cmdtest.BadConfigCase{Name: "env write timeout not a duration", Env: []string{"INKSTREAM_WRITE_TIMEOUT=soon"}, Mention: "INKSTREAM_WRITE_TIMEOUT"},
		cmdtest.BadConfigCase{Name: "env cache negative", Env: []string{"INKSTREAM_COMMAND_CACHE=-1"}, Mention: "command-cache"},
		cmdtest.BadConfigCase{Name: "env provision not a bool", Env: []string{"INKSTREAM_PROVISION=maybe"}, Mention: "INKSTREAM_PROVISION"},
	)
}

func TestBusyPortFailsAtStart(t *testing.T) {
	cmdtest.BusyPort(t, run, "-listen", "INKSTREAM_LISTEN")
}

// TestServesAndStopsCleanly starts the command API against a real NATS
// (URL from NATS_URL, with the command API's user in it) that an admin
// has provisioned, writes an article, and stops it by cancelling the
// context, as SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	natstest.Connect(t, srv.URL(), 1)
	sv := cmdtest.Serve(t, run, "command API listening", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_URL="+natstest.RoleURL(srv.URL(), natsx.RoleCommandAPI)))
	if err := sv.OpsOK(); err != nil {
		t.Fatal(err)
	}
	r, err := systest.Do(sv.Client, http.MethodPost, sv.Base+"/api/articles", map[string]any{"title": "Hi", "content": "c", "author_id": "a"})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
	}
	sv.StopCleanly(t, sv.Base)
}

// TestWaitsForTheAdminToProvision starts the command API, as its own
// user, on a server where nothing is provisioned: it waits, saying for
// what, and is ready once the admin has provisioned.
func TestWaitsForTheAdminToProvision(t *testing.T) {
	srv := natstest.RunServer(t)
	b := cmdtest.Start(t, run, []string{"-listen", "127.0.0.1:0", "-nats-url", natstest.RoleURL(srv.URL(), natsx.RoleCommandAPI)}, cmdtest.Env())
	b.WaitLog(t, cmdtest.Timeout, regexp.MustCompile(`(waiting for stream ARTICLES \(an admin creates it: inkstream provision\))`))
	natstest.Connect(t, srv.URL(), 1)
	addr := b.WaitLog(t, cmdtest.Timeout, regexp.MustCompile(`msg="command API listening" addr=(\S+)`))[0]
	c := &http.Client{Timeout: 10 * time.Second}
	natstest.WaitFor(t, cmdtest.Timeout, func() error {
		r, err := systest.Do(c, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("readyz %d", r.Status)
		}
		return err
	})
	if err := b.Stop(t); err != nil {
		t.Fatal(err)
	}
}
