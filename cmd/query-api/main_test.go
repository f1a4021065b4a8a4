package main

import (
	"net/http"
	"testing"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestCommandLine(t *testing.T) { cmdtest.CommandLine(t, run, "-listen", "INKSTREAM_LISTEN") }

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
