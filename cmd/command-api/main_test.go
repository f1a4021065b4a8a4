package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

func TestCommandLine(t *testing.T) { cmdtest.CommandLine(t, run, "-listen", "INKSTREAM_LISTEN") }

// TestServesAndStopsCleanly starts the command API against a real NATS
// (URL from NATS_URL, with the command API's user in it) that an admin
// has provisioned, writes an article, and stops it by cancelling the
// context, as SIGINT does: run returns nil.
func TestServesAndStopsCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	natstest.Connect(t, srv.URL(), 1)
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
	sv := cmdtest.Serve(t, run, "command API listening", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_URL="+natstest.RoleURL(srv.URL(), natsx.RoleCommandAPI), "INKSTREAM_AUTH_JWKS_FILE="+file))
	if err := sv.OpsOK(); err != nil {
		t.Fatal(err)
	}
	r, err := systest.Do(sv.Client, http.MethodPost, sv.Base+"/api/articles", map[string]any{"title": "Hi", "content": "c", "author_id": "a"}, "Authorization", "Bearer "+token)
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
