package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestHelpListsFlags(t *testing.T) {
	cmdtest.Help(t, run, []string{"-h"}, "-listen", "-nats-url", "-body-limit", "-write-timeout", "-command-cache", "-stream-replicas", "-auth-jwks-url", "-auth-roles-claim", "-rate-limit", "-log-level", "INKSTREAM_", "NATS_URL")
}

func TestBadConfigurationIsAnError(t *testing.T) {
	cmdtest.BadConfig(t, run,
		cmdtest.BadConfigCase{Name: "body limit not a number", Args: []string{"-body-limit=abc"}, Mention: "body-limit"},
		cmdtest.BadConfigCase{Name: "body limit too small", Args: []string{"-body-limit=10"}, Mention: "body-limit"},
		cmdtest.BadConfigCase{Name: "write timeout not a duration", Args: []string{"-write-timeout=soon"}, Mention: "write-timeout"},
		cmdtest.BadConfigCase{Name: "log level unknown", Args: []string{"-log-level=loud"}, Mention: "log-level"},
		cmdtest.BadConfigCase{Name: "log format unknown", Args: []string{"-log-format=xml"}, Mention: "log-format"},
		cmdtest.BadConfigCase{Name: "replicas 0", Args: []string{"-stream-replicas=0"}, Mention: "stream-replicas"},
		cmdtest.BadConfigCase{Name: "JWKS URL not http", Args: []string{"-auth-jwks-url=file:///etc/jwks.json"}, Mention: "auth-jwks-url"},
		cmdtest.BadConfigCase{Name: "roles claim with an empty part", Args: []string{"-auth-roles-claim=realm_access."}, Mention: "auth-roles-claim"},
		cmdtest.BadConfigCase{Name: "rate limit negative", Args: []string{"-rate-limit=-1"}, Mention: "rate-limit"},
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
// (URL from NATS_URL), writes an article, and stops it by cancelling the
// context, as SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	// It trusts the keys of a JWKS file named by the environment.
	signer := authtest.NewSigner(t)
	jwks, err := signer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := signer.Token(auth.Claims{Subject: "a", Roles: []string{"author"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sv := cmdtest.Serve(t, run, "command API listening", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_URL="+srv.URL(), "INKSTREAM_AUTH_JWKS_FILE="+file))
	if err := sv.OpsOK(); err != nil {
		t.Fatal(err)
	}
	r, err := systest.Do(sv.Client, http.MethodPost, sv.Base+"/api/articles", map[string]any{"title": "Hi", "content": "c", "author_id": "a"}, "Authorization", "Bearer "+token)
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, r.Status, r.Body)
	}
	sv.StopCleanly(t, sv.Base)
}
