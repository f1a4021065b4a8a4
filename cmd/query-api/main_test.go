package main

import (
	"net/http"
	"testing"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestHelpListsFlags(t *testing.T) {
	cmdtest.Help(t, run, []string{"-h"}, "-listen", "-nats-url", "-versions", "-min-seq-wait", "-kv-replicas", "-log-format", "INKSTREAM_", "NATS_URL")
}

func TestBadConfigurationIsAnError(t *testing.T) {
	cmdtest.BadConfig(t, run,
		cmdtest.BadConfigCase{Name: "versions not a number", Args: []string{"-versions=abc"}, Mention: "versions"},
		cmdtest.BadConfigCase{Name: "versions 0", Args: []string{"-versions=0"}, Mention: "versions"},
		cmdtest.BadConfigCase{Name: "min-seq-wait not a duration", Args: []string{"-min-seq-wait=soon"}, Mention: "min-seq-wait"},
		cmdtest.BadConfigCase{Name: "min-seq-wait negative", Args: []string{"-min-seq-wait=-1s"}, Mention: "min-seq-wait"},
		cmdtest.BadConfigCase{Name: "duplicate window too short", Args: []string{"-duplicate-window=1ms"}, Mention: "duplicate-window"},
		cmdtest.BadConfigCase{Name: "empty NATS URL", Args: []string{"-nats-url="}, Mention: "nats-url"},
		cmdtest.BadConfigCase{Name: "env versions not a number", Env: []string{"INKSTREAM_VERSIONS=abc"}, Mention: "INKSTREAM_VERSIONS"},
		cmdtest.BadConfigCase{Name: "env min-seq-wait not a duration", Env: []string{"INKSTREAM_MIN_SEQ_WAIT=soon"}, Mention: "INKSTREAM_MIN_SEQ_WAIT"},
		cmdtest.BadConfigCase{Name: "env kv replicas not a number", Env: []string{"INKSTREAM_KV_REPLICAS=three"}, Mention: "INKSTREAM_KV_REPLICAS"},
	)
}

func TestBusyPortFailsAtStart(t *testing.T) {
	cmdtest.BusyPort(t, run, "-listen", "INKSTREAM_LISTEN")
}

// TestServesAndStopsCleanly starts the query API against a real NATS (URL
// from INKSTREAM_NATS_URL, its user and password from
// INKSTREAM_NATS_USER and INKSTREAM_NATS_PASSWORD) that an admin has
// provisioned, reads from it, and stops it by cancelling the context, as
// SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	natstest.Connect(t, srv.URL(), 1)
	sv := cmdtest.Serve(t, run, "query API listening", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env(
		"INKSTREAM_NATS_URL="+natstest.StripCredentials(srv.URL()), "NATS_URL="+cmdtest.UnreachableNATS,
		"INKSTREAM_NATS_USER="+string(natsx.RoleQueryAPI), "INKSTREAM_NATS_PASSWORD="+natstest.Password(natsx.RoleQueryAPI)))
	natstest.WaitFor(t, cmdtest.Timeout, sv.OpsOK)
	r, err := systest.Do(sv.Client, http.MethodGet, sv.Base+"/api/articles", nil)
	if err != nil || r.Status != http.StatusOK || string(r.Body) != `{"items":[]}` {
		t.Fatalf("GET /api/articles: %v %d %s", err, r.Status, r.Body)
	}
	r, err = systest.Do(sv.Client, http.MethodGet, sv.Base+"/api/articles/0196b5c2-7d1e-7a3b-8c4d-5e6f7a8b9c0d", nil)
	if err != nil || r.Status != http.StatusNotFound {
		t.Fatalf("GET unknown article: %v %d %s", err, r.Status, r.Body)
	}
	sv.StopCleanly(t, sv.Base)
}
