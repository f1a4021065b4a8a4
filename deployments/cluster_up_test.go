package deployments_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/pkg/events"
)

// The ports `local-cluster.sh up` listens on, before CLUSTER_PORT_OFFSET:
// NATS clients, routes and monitoring of three nodes, then the services.
var upBasePorts = []int{
	4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224,
	8080, 8090, 8081, 8091, 8082, 8092,
}

// The names in the table the script prints once everything is ready.
var upNames = []string{
	"nats-1", "nats-2", "nats-3",
	"command-api-1", "command-api-2", "query-api-1", "query-api-2", "projector-1", "projector-2",
}

const (
	upReadyLine    = "local-cluster: ready;"
	upReadyTimeout = 120 * time.Second
	upStopTimeout  = 60 * time.Second
)

// TestLocalClusterUpWriteReadDown runs what `make cluster` runs, with
// binaries built here: three NATS nodes and two instances of each service.
// It writes through one command API and reads its own write from the other
// query API with the consistency token, in both directions, checks that the
// stream is replicated on all three nodes, then stops the script with
// SIGTERM and expects exit status 0 and every port free again.
func TestLocalClusterUpWriteReadDown(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	start := time.Now()
	upBuild(t, root, bin)
	t.Logf("built the binaries in %s", time.Since(start).Round(time.Millisecond))

	var c *upCluster
	for attempt := 1; ; attempt++ {
		offset := upFreeOffset(t)
		c = upStart(t, root, bin, offset)
		err := c.waitReady(upBudget(t, upReadyTimeout))
		if err == nil {
			break
		}
		// Another test may take one of the ports between the probe and the
		// script's own check; the script then exits at once, starting nothing.
		if attempt < 3 && c.exited() && strings.Contains(c.output(), "is already in use") {
			t.Logf("port offset %d was taken meanwhile; trying another", offset)
			continue
		}
		t.Fatalf("%v\n%s", err, c.output())
	}
	t.Logf("cluster ready at port offset %d (%s via %s)", c.offset, time.Since(start).Round(time.Millisecond), c.how)

	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	url := func(base int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+c.offset) }
	commandAPI1, commandAPI2 := url(8080), url(8090)
	queryAPI1, queryAPI2 := url(8081), url(8091)

	// Create through command-api-1, read from query-api-2 with the token.
	created := map[string]any{
		"title":     "Hello from the local cluster",
		"content":   "Written through command-api-1.",
		"author_id": "deployments-test",
		"tags":      []string{"cluster", "r3"},
	}
	res, body := upDo(t, client, http.MethodPost, commandAPI1+"/api/articles", created, nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST command-api-1: %s\n%s", res.Status, body)
	}
	seq1 := upSeq(t, res)
	var article map[string]any
	if err := json.Unmarshal(body, &article); err != nil {
		t.Fatalf("POST answer: %v\n%s", err, body)
	}
	id, _ := article["id"].(string)
	if id == "" || res.Header.Get("ETag") != `"1"` {
		t.Fatalf("POST answer: id %q, ETag %q\n%s", id, res.Header.Get("ETag"), body)
	}
	upReadOwnWrite(t, client, queryAPI2, id, seq1, res.Header.Get("ETag"), body)

	// Replace through command-api-2, which has not seen the article, and
	// read it from query-api-1 with the new token.
	replaced := map[string]any{
		"title":     "Hello again",
		"content":   "Replaced through command-api-2.",
		"author_id": "deployments-test",
		"status":    "published",
		"tags":      []string{"cluster"},
	}
	res, body = upDo(t, client, http.MethodPut, commandAPI2+"/api/articles/"+id, replaced, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PUT command-api-2: %s\n%s", res.Status, body)
	}
	seq2 := upSeq(t, res)
	if seq2 <= seq1 || res.Header.Get("ETag") != `"2"` {
		t.Fatalf("PUT answer: X-Event-Seq %d after %d, ETag %q; want a later sequence and \"2\"", seq2, seq1, res.Header.Get("ETag"))
	}
	upReadOwnWrite(t, client, queryAPI1, id, seq2, res.Header.Get("ETag"), body)
	client.CloseIdleConnections()

	upCheckStream(t, c, seq2)

	// Stop: SIGTERM to the script itself, which stops its children.
	stopped := time.Now()
	if err := c.signalScript(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to local-cluster.sh: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(upStopTimeout):
		t.Fatalf("local-cluster.sh did not exit within %s of SIGTERM\n%s", upStopTimeout, c.output())
	}
	if c.waitErr != nil {
		t.Fatalf("after SIGTERM, %s: %v; want exit status 0\n%s", c.how, c.waitErr, c.output())
	}
	t.Logf("stopped in %s", time.Since(stopped).Round(time.Millisecond))
	// The script has exited, but its last lines may still be in the pipe:
	// read to the end before looking for them. The pipe stays open past
	// that only if a child of the script still holds it.
	select {
	case <-c.read:
	case <-time.After(upStopTimeout):
		t.Errorf("the script's output was still open %s after it exited (a child holds it)", upStopTimeout)
	}
	out := c.output()
	for _, name := range upNames {
		if !strings.Contains(out, "local-cluster: stopped "+name+"\n") {
			t.Errorf("the script did not report a clean stop of %s", name)
		}
	}
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("processes still running after the script exited: %v", left)
	}
	for _, p := range upBasePorts {
		if !upPortFree(p + c.offset) {
			t.Errorf("127.0.0.1:%d is still in use after the script exited", p+c.offset)
		}
	}
	if t.Failed() {
		t.Logf("script output:\n%s", out)
	}
}

// upReadOwnWrite reads article id from a query API with X-Min-Event-Seq seq
// and requires the answer the command API gave: 200, same ETag, same JSON.
func upReadOwnWrite(t *testing.T, client *http.Client, queryAPI, id string, seq uint64, etag string, want []byte) {
	t.Helper()
	res, got := upDo(t, client, http.MethodGet, queryAPI+"/api/articles/"+id, nil,
		map[string]string{"X-Min-Event-Seq": strconv.FormatUint(seq, 10)})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/articles/%s with X-Min-Event-Seq %d: %s\n%s", queryAPI, id, seq, res.Status, got)
	}
	if res.Header.Get("ETag") != etag {
		t.Errorf("GET %s: ETag %q, want %q", queryAPI, res.Header.Get("ETag"), etag)
	}
	var a, b map[string]any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("GET %s: %v\n%s", queryAPI, err, got)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("GET %s with X-Min-Event-Seq %d answered\n%s\nthe write answered\n%s", queryAPI, seq, got, want)
	}
}

// upCheckStream asks the cluster itself for stream ARTICLES: 3 replicas, a
// leader and two followers among the three nodes, holding the writes.
func upCheckStream(t *testing.T, c *upCluster, lastSeq uint64) {
	t.Helper()
	var urls []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", 4222+i+c.offset))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("deployments-test"), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %v: %v", urls, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatalf("stream %s: %v", events.StreamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", events.StreamName, err)
	}
	if info.Config.Replicas != 3 {
		t.Errorf("stream %s: %d replicas configured, want 3", events.StreamName, info.Config.Replicas)
	}
	if info.State.LastSeq < lastSeq {
		t.Errorf("stream %s: last sequence %d, but a write was acknowledged at %d", events.StreamName, info.State.LastSeq, lastSeq)
	}
	cl := info.Cluster
	if cl == nil {
		t.Fatalf("stream %s has no cluster information", events.StreamName)
	}
	peers := []string{cl.Leader}
	for _, r := range cl.Replicas {
		peers = append(peers, r.Name)
	}
	slices.Sort(peers)
	if cl.Name != "inkstream" || cl.Leader == "" || len(cl.Replicas) != 2 ||
		!slices.Equal(peers, []string{"nats-1", "nats-2", "nats-3"}) {
		t.Errorf("stream %s: cluster %q, leader %q, peers %v; want cluster inkstream, a leader and 2 replicas on nats-1..3",
			events.StreamName, cl.Name, cl.Leader, peers)
	}
}

// upBuild builds the three services and nats-server into dir, as `make
// build` and the script do.
func upBuild(t *testing.T, root, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upBudget(t, 8*time.Minute))
	defer cancel()
	for _, args := range [][]string{
		{"build", "-o", dir + string(filepath.Separator), "./cmd/command-api", "./cmd/query-api", "./cmd/projector"},
		{"build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// upBudget is want, or less so that a wait ends in time for the cleanup to
// stop the cluster before `go test -timeout` ends the test binary.
func upBudget(t *testing.T, want time.Duration) time.Duration {
	if deadline, ok := t.Deadline(); ok {
		return max(min(want, time.Until(deadline)-upStopTimeout-30*time.Second), time.Second)
	}
	return want
}

// upFreeOffset finds a CLUSTER_PORT_OFFSET at which all fifteen ports are
// free. The ports stay below 32768, where Linux starts to pick the local
// ports of outgoing connections, so that none can take one meanwhile.
func upFreeOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		off := 10000 + rand.IntN(14500) // highest port 8224+24499 = 32723
		if !slices.ContainsFunc(upBasePorts, func(p int) bool { return !upPortFree(p + off) }) {
			return off
		}
	}
	t.Fatal("found no port offset with fifteen free ports")
	return 0
}

func upPortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// upCluster is one run of `make cluster` (or of the script directly).
type upCluster struct {
	offset  int
	bin     string
	dir     string // CLUSTER_DIR
	how     string // "make cluster" or "local-cluster.sh"
	viaMake bool
	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd has exited; then waitErr is set
	waitErr error
	read    chan struct{} // closed once all output has been read
	notify  chan struct{} // a new line has arrived

	mu   sync.Mutex
	out  bytes.Buffer
	pids map[string]int // from the table the script prints
}

// upStart starts the cluster and registers a cleanup that stops it, and on
// failure kills whatever it left running.
func upStart(t *testing.T, root, bin string, offset int) *upCluster {
	t.Helper()
	c := &upCluster{
		offset: offset, bin: bin, dir: t.TempDir(),
		done: make(chan struct{}), read: make(chan struct{}), notify: make(chan struct{}, 1),
	}
	// The script's pid is needed for SIGTERM: make's child when make runs
	// it, found in /proc; without /proc or make, run the script directly.
	_, err := exec.LookPath("make")
	_, perr := os.Stat("/proc/self/stat")
	c.viaMake = err == nil && perr == nil
	if c.viaMake {
		c.how = "make cluster"
		c.cmd = exec.Command("make", "cluster", "BIN="+bin)
	} else {
		t.Logf("running deployments/local-cluster.sh directly (make: %v, /proc: %v)", err, perr)
		c.how = "local-cluster.sh"
		c.cmd = exec.Command("bash", "deployments/local-cluster.sh", "up")
	}
	c.cmd.Dir = root
	for _, kv := range os.Environ() {
		// An outer make (`make test`) must not steer this one.
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	c.cmd.Env = append(c.cmd.Env,
		"CLUSTER_BUILD=0",
		"CLUSTER_DIR="+c.dir,
		"CLUSTER_PORT_OFFSET="+strconv.Itoa(offset),
		"BIN="+bin, // make takes it from its command line
	)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("%s: %v", c.how, err)
	}
	w.Close()
	go func() {
		defer close(c.read)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.mu.Lock()
			c.out.Write(sc.Bytes())
			c.out.WriteByte('\n')
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.cleanup(t) })
	return c
}

func (c *upCluster) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *upCluster) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitReady waits for the ready line and reads the pid table above it.
func (c *upCluster) waitReady(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		out := c.output()
		if i := strings.Index(out, "\n"+upReadyLine); i >= 0 {
			return c.parseTable(out[:i])
		}
		select {
		case <-c.notify:
		case <-c.read:
			<-c.done
			if out := c.output(); strings.Contains(out, "\n"+upReadyLine) {
				continue
			}
			return fmt.Errorf("%s exited before %q: %v", c.how, upReadyLine, c.waitErr)
		case <-deadline.C:
			return fmt.Errorf("%s printed no %q within %s", c.how, upReadyLine, timeout)
		}
	}
}

func (c *upCluster) parseTable(out string) error {
	pids := map[string]int{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 4 || !slices.Contains(upNames, f[0]) {
			continue
		}
		pid, err := strconv.Atoi(f[3])
		if err != nil || pid <= 0 {
			return fmt.Errorf("pid table: bad line %q", line)
		}
		pids[f[0]] = pid
	}
	c.mu.Lock()
	c.pids = pids
	c.mu.Unlock()
	if len(pids) != len(upNames) {
		return fmt.Errorf("the pid table names %d of the %d processes", len(pids), len(upNames))
	}
	return nil
}

// scriptPID is the pid of the bash running local-cluster.sh: make's only
// child (make runs `sh -c "... exec bash deployments/local-cluster.sh up"`).
func (c *upCluster) scriptPID() (int, error) {
	if !c.viaMake {
		return c.cmd.Process.Pid, nil
	}
	var kids []int
	for _, pid := range upProcPIDs() {
		if upParent(pid) == c.cmd.Process.Pid {
			kids = append(kids, pid)
		}
	}
	if len(kids) != 1 {
		return 0, fmt.Errorf("make (pid %d) has %d children %v, want the script alone", c.cmd.Process.Pid, len(kids), kids)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", kids[0]))
	if !bytes.Contains(cmdline, []byte("local-cluster.sh")) {
		return 0, fmt.Errorf("make's child %d runs %q, not local-cluster.sh", kids[0], bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return kids[0], nil
}

// signalScript sends sig to the script's own pid, not to make, which would
// die of the signal itself instead of exiting with the script's status.
func (c *upCluster) signalScript(sig os.Signal) error {
	pid, err := c.scriptPID()
	if err != nil {
		return err
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	return p.Signal(sig)
}

// leftovers lists the processes of this cluster that still run: those of
// the pid table, and (with /proc) any process running a binary of c.bin.
func (c *upCluster) leftovers() []int {
	var pids []int
	c.mu.Lock()
	for _, pid := range c.pids {
		pids = append(pids, pid)
	}
	c.mu.Unlock()
	pids = append(pids, upProcsOf(c.bin)...)
	slices.Sort(pids)
	pids = slices.Compact(pids)
	return slices.DeleteFunc(pids, func(pid int) bool { return !upAlive(pid, c.bin) })
}

// cleanup stops the script if it still runs (SIGTERM, then SIGKILL), then
// kills every process of the cluster that is left: the script's children
// run in sessions of their own and outlive a killed script.
func (c *upCluster) cleanup(t *testing.T) {
	if !c.exited() {
		if err := c.signalScript(syscall.SIGTERM); err != nil {
			t.Logf("cleanup: SIGTERM to the script: %v", err)
		}
		select {
		case <-c.done:
		case <-time.After(upStopTimeout):
			t.Errorf("cleanup: %s still running %s after SIGTERM; killing it", c.how, upStopTimeout)
			if pid, err := c.scriptPID(); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
					p.Release()
				}
			}
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("cleanup: killing processes the script left running: %v", left)
		for _, pid := range left {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
				p.Release()
			}
		}
		natstest.WaitFor(t, 20*time.Second, func() error {
			if left := c.leftovers(); len(left) > 0 {
				return fmt.Errorf("cleanup: processes %v survive SIGKILL", left)
			}
			return nil
		})
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", c.how, c.output())
		logs, _ := filepath.Glob(filepath.Join(c.dir, "logs", "*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("%s (last lines):\n%s", filepath.Base(f), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
}

// upAlive reports whether pid runs; with /proc, only if it runs a binary
// of bin (so a reused pid is never taken for one of ours).
func upAlive(pid int, bin string) bool {
	if runtime.GOOS == "linux" {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			return false
		}
		return strings.HasPrefix(exe, bin+string(filepath.Separator))
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	defer p.Release()
	return p.Signal(syscall.Signal(0)) == nil
}

// upProcsOf lists the processes that run a binary of bin (Linux only).
func upProcsOf(bin string) []int {
	var out []int
	for _, pid := range upProcPIDs() {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil &&
			strings.HasPrefix(exe, bin+string(filepath.Separator)) {
			out = append(out, pid)
		}
	}
	return out
}

func upProcPIDs() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// upParent reads the parent pid from /proc/<pid>/stat (0 if unknown).
func upParent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func upDo(t *testing.T, client *http.Client, method, url string, body any, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return res, b
}

func upSeq(t *testing.T, res *http.Response) uint64 {
	t.Helper()
	seq, err := strconv.ParseUint(res.Header.Get("X-Event-Seq"), 10, 64)
	if err != nil || seq == 0 {
		t.Fatalf("%s %s: X-Event-Seq %q, want a stream sequence", res.Request.Method, res.Request.URL, res.Header.Get("X-Event-Seq"))
	}
	return seq
}
