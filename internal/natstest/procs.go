package natstest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natsx"
)

// envNode carries a child node's options from Procs to ServeChildNode.
const envNode = "INKSTREAM_TEST_NATS_NODE"

// ServeChildNode is the body of a nats-server that Procs runs in a child
// process: the test binary again. A package whose tests use Procs calls it
// first in TestMain; in the parent process it returns at once.
func ServeChildNode() {
	cfg := os.Getenv(envNode)
	if cfg == "" {
		return
	}
	var o natsx.EmbeddedOptions
	if err := json.Unmarshal([]byte(cfg), &o); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	srv, err := natsx.StartEmbedded(o)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	// Serve until the parent closes stdin (or kills us, or dies).
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	os.Exit(0)
}

// Procs are real nats-servers, each in a child process that a test can
// kill (SIGKILL: a crash, nothing handed over or flushed), stall (SIGSTOP)
// and resume (SIGCONT). More than one node form a cluster.
type Procs struct {
	opts  []natsx.EmbeddedOptions
	procs []*exec.Cmd
}

// RunProcs starts n nodes in child processes and waits until JetStream
// answers. They are killed when the test ends.
func RunProcs(tb testing.TB, n int) *Procs {
	tb.Helper()
	var c *Procs
	for attempt := 1; ; attempt++ {
		c = newProcs(tb, n)
		// Start them together: each waits for its routes before it is ready.
		errs := make(chan error, n)
		for i := range c.opts {
			go func() { errs <- c.start(i) }()
		}
		var err error
		for range c.opts {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err == nil {
			break
		}
		for i := range c.procs {
			c.kill(i)
		}
		// A probed free port can be taken by another test before the node
		// listens; the node then never gets ready. Try other ports.
		if attempt == 3 {
			tb.Fatal(err)
		}
		tb.Logf("%v; trying other ports", err)
	}
	tb.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	nc, err := nats.Connect(c.URL())
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	WaitFor(tb, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	return c
}

// newProcs picks the ports and stores of n nodes.
func newProcs(tb testing.TB, n int) *Procs {
	tb.Helper()
	c := &Procs{procs: make([]*exec.Cmd, n)}
	routes := make([]string, n)
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = FreePort(tb)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", clusterPorts[i])
	}
	for i := 0; i < n; i++ {
		o := natsx.EmbeddedOptions{ServerName: fmt.Sprintf("n%d", i+1), Port: FreePort(tb), StoreDir: tb.TempDir(), NoLog: true, Users: Users()}
		if n > 1 {
			o.ClusterName, o.ClusterPort, o.Routes = "inkstream-procs", clusterPorts[i], routes
		}
		c.opts = append(c.opts, o)
	}
	return c
}

// start runs node i and waits until it accepts connections.
func (c *Procs) start(i int) error {
	cfg, err := json.Marshal(c.opts[i])
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), envNode+"="+string(cfg))
	if _, err := cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start node %s: %w", c.opts[i].ServerName, err)
	}
	c.procs[i] = cmd
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		last := "exited"
		for sc.Scan() {
			if last = sc.Text(); last == "ready" || strings.HasPrefix(last, "error:") {
				break
			}
		}
		ready <- last
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			return fmt.Errorf("node %s: %s", c.opts[i].ServerName, line)
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("node %s did not start within a minute", c.opts[i].ServerName)
	}
}

func (c *Procs) kill(i int) {
	if cmd := c.procs[i]; cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stalled node dies too
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		c.procs[i] = nil
	}
}

// URL lists the client URLs of every node, with the admin's credentials.
func (c *Procs) URL() string {
	var urls []string
	for i := range c.opts {
		urls = append(urls, c.NodeURL(i))
	}
	return strings.Join(urls, ",")
}

// NodeURL is the client URL of node i, with the admin's credentials.
func (c *Procs) NodeURL(i int) string { return adminURL(c.opts[i].Port) }

// Len is the number of nodes.
func (c *Procs) Len() int { return len(c.opts) }

// Name is the server name of node i.
func (c *Procs) Name(i int) string { return c.opts[i].ServerName }

// Kill kills node i with SIGKILL.
func (c *Procs) Kill(tb testing.TB, i int) { c.kill(i) }

// Restart starts node i again on its port and store.
func (c *Procs) Restart(tb testing.TB, i int) {
	tb.Helper()
	if err := c.start(i); err != nil {
		tb.Fatal(err)
	}
}

// Stall stops node i with SIGSTOP: it keeps its connections but answers
// nothing until Resume.
func (c *Procs) Stall(tb testing.TB, i int) { c.signal(tb, i, syscall.SIGSTOP) }

// Resume continues a stalled node with SIGCONT.
func (c *Procs) Resume(tb testing.TB, i int) { c.signal(tb, i, syscall.SIGCONT) }

func (c *Procs) signal(tb testing.TB, i int, sig os.Signal) {
	tb.Helper()
	if err := c.procs[i].Process.Signal(sig); err != nil {
		tb.Fatalf("signal %v to node %s: %v", sig, c.Name(i), err)
	}
}
