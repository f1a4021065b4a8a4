package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/systest"
)

// devToken runs `inkstream token` with the -data-dir of the all-in-one's
// args and the flags given, and returns the token it prints.
func devToken(tb testing.TB, args []string, flags ...string) string {
	tb.Helper()
	i := slices.Index(args, "-data-dir")
	if i < 0 {
		tb.Fatalf("no -data-dir in %v", args)
	}
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), cmdtest.Timeout)
	defer cancel()
	if err := run(ctx, append(append([]string{"token"}, flags...), "-data-dir", args[i+1]), cmdtest.Env(), &out, &errs); err != nil {
		tb.Fatalf("inkstream token: %v\n%s", err, errs.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 {
		tb.Fatalf("inkstream token printed %q", out.String())
	}
	return tok
}

// TestTokensOfTheDevelopmentKey: the all-in-one creates its key on the
// first start; `inkstream token` signs with it; an author's token writes
// as that author and no other, the token of another key is refused, and
// the key (and so every token) survives a restart.
func TestTokensOfTheDevelopmentKey(t *testing.T) {
	dir := t.TempDir()
	args := devArgs(dir, "127.0.0.1:0")
	if _, err := cmdtest.RunBriefly(t, runBoth, []string{"token", "-sub", "ada", "-roles", "author", "-data-dir", dir}, cmdtest.Env()); !errors.Is(err, auth.ErrNoDevKey) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("token before the first start: %v, want an error naming the directory", err)
	}
	d := startDev(t, args)
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	ada := devToken(t, args, "-sub", "ada", "-roles", "author", "-ttl", "1h")
	write := func(author, token string) int {
		r, err := systest.Do(c, http.MethodPost, d.cmd+"/api/articles", map[string]any{"title": "By " + author, "content": "c", "author_id": author}, "Authorization", "Bearer "+token)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if got := write("ada", ada); got != http.StatusCreated {
		t.Fatalf("ada as herself: %d", got)
	}
	if got := write("bob", ada); got != http.StatusForbidden {
		t.Fatalf("ada as bob: %d, want 403", got)
	}
	// The development key of another data directory is not trusted.
	otherDir := t.TempDir()
	if _, _, err := auth.LoadOrCreateDevKey(otherDir); err != nil {
		t.Fatal(err)
	}
	if got := write("ada", devToken(t, devArgs(otherDir, ""), "-sub", "ada", "-roles", "admin")); got != http.StatusUnauthorized {
		t.Fatalf("a token of another key: %d, want 401", got)
	}
	d.StopCleanly(t, d.cmd)
	d2 := startDev(t, args)
	if got := func() int { d.cmd = d2.cmd; return write("ada", ada) }(); got != http.StatusCreated {
		t.Fatalf("ada's token after a restart: %d", got)
	}
}

func TestTokenBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-roles", "author"},
		{"-sub", "ada", "-roles", "writer"},
		{"-sub", "ada", "-ttl", "0s"},
		{"-sub", "ada", "-auth-roles-claim", "realm_access..roles"},
	} {
		err := run(context.Background(), append(append([]string{"token"}, args...), "-data-dir", dir), cmdtest.Env(), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("token %v: no error", args)
		}
	}
}
