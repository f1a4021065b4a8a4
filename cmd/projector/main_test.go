package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestHelpListsFlags(t *testing.T) {
	cmdtest.Help(t, run, []string{"-h"}, "-listen", "-nats-url", "-batch", "-projector-cache-bytes", "-provision", "-pprof", "INKSTREAM_", "NATS_URL")
}

func TestBadConfigurationIsAnError(t *testing.T) {
	cmdtest.BadConfig(t, run,
		cmdtest.BadConfigCase{Name: "batch not a number", Args: []string{"-batch=abc"}, Mention: "batch"},
		cmdtest.BadConfigCase{Name: "batch 0", Args: []string{"-batch=0"}, Mention: "batch"},
		cmdtest.BadConfigCase{Name: "batch 10001", Args: []string{"-batch=10001"}, Mention: "batch"},
		cmdtest.BadConfigCase{Name: "cache negative", Args: []string{"-projector-cache-bytes=-1"}, Mention: "projector-cache-bytes"},
		cmdtest.BadConfigCase{Name: "env batch not a number", Env: []string{"INKSTREAM_BATCH=abc"}, Mention: "INKSTREAM_BATCH"},
		cmdtest.BadConfigCase{Name: "env cache not a number", Env: []string{"INKSTREAM_PROJECTOR_CACHE_BYTES=lots"}, Mention: "INKSTREAM_PROJECTOR_CACHE_BYTES"},
		cmdtest.BadConfigCase{Name: "env log level unknown", Env: []string{"INKSTREAM_LOG_LEVEL=loud"}, Mention: "log-level"},
	)
}

func TestBusyPortFailsAtStart(t *testing.T) {
	cmdtest.BusyPort(t, run, "-listen", "INKSTREAM_LISTEN")
}

// TestServesAndStopsCleanly runs the projector against a real NATS (URL
// from -nats-url) next to a command API without projectors of its own: an
// article written there reaches KV. Cancelling the context, as SIGINT
// does, makes run return nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	s := systest.Start(t, srv.URL(), 1, 0)
	sv := cmdtest.Serve(t, run, "projector health listening", []string{"-listen", "127.0.0.1:0", "-nats-url", srv.URL()}, cmdtest.Env("NATS_URL="+cmdtest.UnreachableNATS))
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
