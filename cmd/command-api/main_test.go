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

func TestCommandLine(t *testing.T) { cmdtest.CommandLine(t, run, "-listen", "INKSTREAM_LISTEN") }

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
