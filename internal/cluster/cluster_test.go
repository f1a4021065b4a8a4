package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/cluster"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/procs"
	"github.com/inkstream/inkstream/internal/systest"
)

// The ports of the cluster before -port-offset.
var basePorts = []int{4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224, 8080, 8090, 8081, 8091, 8082, 8092}

// TestClusterUpWriteReadKillStop runs cmd/inkcluster as `make cluster`
// does, with binaries built here, on ports moved by a free offset. It
// writes through one command API and reads the write from the other query
// API, kills a NATS node and expects the supervisor to report it, then
// stops the supervisor with SIGINT and expects exit status 0 and no
// process of the cluster left.
func TestClusterUpWriteReadKillStop(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin, data := build(t, root), t.TempDir()
	g := &procs.Group{Dir: t.TempDir()} // its cleanup runs before the directories' removal
	t.Cleanup(func() { g.StopAll(time.Minute, nil) })
	var sup *procs.Proc
	offset, dataDir := 0, ""
	for attempt := 1; ; attempt++ {
		offset, dataDir = freeOffset(t), filepath.Join(data, strconv.Itoa(attempt))
		sup, err = g.Start(fmt.Sprintf("inkcluster-%d", attempt), filepath.Join(bin, "inkcluster"), []string{
			"-bin", bin, "-data-dir", dataDir, "-port-offset", strconv.Itoa(offset),
			"-nats-config", filepath.Join(root, "deployments", "nats", "nats.conf"),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = waitOutput(t, sup, "inkcluster: ready;", 3*time.Minute)
		if err == nil {
			break
		}
		// Another test may take a port between freeOffset and the start.
		if attempt < 3 && sup.Exited() && strings.Contains(sup.Tail(50), "in use") {
			t.Logf("a port at offset %d was taken meanwhile; trying another offset", offset)
			continue
		}
		t.Fatal(err)
	}
	pids := table(t, sup)

	url := func(base int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+offset) }
	client := &http.Client{Timeout: 20 * time.Second}
	// The APIs trust the development key in the data directory (the
	// supervisor made it); the written article is a draft, read by its author.
	key, err := auth.LoadDevKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := key.Token(auth.Claims{Subject: "a", Roles: []string{"author"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w, err := systest.Do(client, http.MethodPost, url(8080)+"/api/articles", `{"title":"t","content":"c","author_id":"a"}`, "Authorization", "Bearer "+token)
	if err != nil || w.Status != http.StatusCreated {
		t.Fatalf("POST command-api-1: %d %s (%v)", w.Status, w.Body, err)
	}
	var created, read struct{ ID, Title string }
	w.JSON(t, &created)
	r, err := systest.Do(client, http.MethodGet, url(8091)+"/api/articles/"+created.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(w.Seq(), 10), "Authorization", "Bearer "+token)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET query-api-2 with X-Min-Event-Seq %d: %d %s (%v)", w.Seq(), r.Status, r.Body, err)
	}
	if r.JSON(t, &read); read != created || created.ID == "" {
		t.Fatalf("GET query-api-2 with X-Min-Event-Seq %d: %s; want article %+v", w.Seq(), r.Body, created)
	}

	if err := syscall.Kill(pids["nats-2"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(t, sup, fmt.Sprintf("inkcluster: nats-2 (pid %d) exited: signal: killed", pids["nats-2"]), time.Minute); err != nil {
		t.Fatal(err)
	}

	if err := sup.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sup.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("inkcluster still runs 2 minutes after SIGINT:\n%s", sup.Tail(30))
	}
	if sup.Err() != nil {
		t.Errorf("inkcluster after SIGINT: %v, want exit status 0:\n%s", sup.Err(), sup.Tail(30))
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) is still there after inkcluster exited (kill 0: %v)", name, pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestFlags(t *testing.T) {
	run := func(args []string, env ...string) error {
		return cluster.Main(t.Context(), args, cmdtest.Env(env...), io.Discard, io.Discard)
	}
	if err := run([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if err := run(nil, "INKSTREAM_CLUSTER_PORT_OFFSET=x"); !errors.Is(err, cluster.ErrUsage) {
		t.Errorf("INKSTREAM_CLUSTER_PORT_OFFSET=x: %v, want a usage error", err)
	}
	err := run([]string{"-bin", t.TempDir(), "-stop-timeout", "0s"}, "INKSTREAM_CLUSTER_PORT_OFFSET=60000")
	for _, want := range []string{"nats-server is missing from", "(make build)", "-port-offset 60000 puts ports outside", "-stop-timeout must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
}

// build builds inkstream, the services, inkcluster and nats-server into a temporary
// directory (without -race).
func build(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"build", "-o", dir + string(filepath.Separator), "./cmd/inkstream", "./cmd/command-api", "./cmd/query-api", "./cmd/projector", "./cmd/inkcluster"},
		{"build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return dir
}

// freeOffset finds a port offset at which every port of the cluster is
// free. The ports stay below 32768, where Linux starts to pick the local
// ports of outgoing connections.
func freeOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		off := 10000 + rand.IntN(14500)
		if !slices.ContainsFunc(basePorts, func(p int) bool {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+off))
			if err == nil {
				l.Close()
			}
			return err != nil
		}) {
			return off
		}
	}
	t.Fatal("found no port offset with every port free")
	return 0
}

// waitOutput waits until the supervisor's output holds line.
func waitOutput(t *testing.T, sup *procs.Proc, line string, timeout time.Duration) error {
	return procs.Poll(t.Context(), sup, fmt.Sprintf("%q in the output of inkcluster", line), 50*time.Millisecond, timeout, func() (bool, error) {
		out, err := os.ReadFile(sup.Log)
		return bytes.Contains(out, []byte(line)), err
	})
}

// table reads the pid of each process from the table the supervisor printed.
func table(t *testing.T, sup *procs.Proc) map[string]int {
	t.Helper()
	out, err := os.ReadFile(sup.Log)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 3 && (strings.HasPrefix(f[2], "nats://") || strings.HasPrefix(f[2], "http://")) {
			pids[f[0]], _ = strconv.Atoi(f[1])
		}
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "command-api-1", "command-api-2", "query-api-1", "query-api-2", "projector-1", "projector-2"} {
		if pids[name] <= 0 {
			t.Fatalf("no pid of %s in the table:\n%s", name, out)
		}
	}
	return pids
}
