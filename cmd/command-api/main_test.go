package main

import (
	"net/http"
	"testing"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestCommandLine(t *testing.T) { cmdtest.CommandLine(t, run, "-listen", "INKSTREAM_LISTEN") }

// TestServesAndStopsCleanly starts the command API against a real NATS
// (URL from NATS_URL), writes an article, and stops it by cancelling the
// context, as SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	sv := cmdtest.Serve(t, run, "command API listening", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_URL="+srv.URL()))
	if err := sv.OpsOK(); err != nil {
		t.Fatal(err)
	}
	r, err := systest.Do(sv.Client, http.MethodPost, sv.Base+"/api/articles", map[string]any{"title": "Hi", "content": "c", "author_id": "a"})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
	}
	sv.StopCleanly(t, sv.Base)
}
