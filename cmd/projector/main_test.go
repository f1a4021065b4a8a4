package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestCommandLine(t *testing.T) { cmdtest.CommandLine(t, run, "-listen", "INKSTREAM_LISTEN") }

// TestServesAndStopsCleanly runs the projector against a real NATS (URL
// from -nats-url) next to a command API without projectors of its own: an
// article written there reaches KV. Cancelling the context, as SIGINT
// does, makes run return nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	s := systest.Start(t, srv.URL(), 1, 0)
	sv := cmdtest.Serve(t, run, "projector health listening", []string{"-listen", "127.0.0.1:0", "-nats-url", natstest.RoleURL(srv.URL(), natsx.RoleProjector)}, cmdtest.Env("NATS_URL="+cmdtest.UnreachableNATS))
	natstest.WaitFor(t, cmdtest.Timeout, sv.OpsOK)
	r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", map[string]any{"title": "Projected", "content": "c", "author_id": "a"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	s.WaitProjected(20 * time.Second)
	var a struct{ ID string }
	r.JSON(t, &a)
	if _, err := s.Res.KV.Get(natstest.Context(t), a.ID); err != nil {
		t.Fatalf("snapshot of %s: %v", a.ID, err)
	}
	sv.StopCleanly(t, sv.Base)
}
