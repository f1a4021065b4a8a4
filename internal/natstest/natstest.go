// Package natstest runs real nats-servers with JetStream inside a test
// process: one server, or a three-node cluster on loopback. Every server
// lets in inkstream's users only, each with its role's permissions (as
// make run, make cluster and compose do), with passwords made for this
// test process: a server's URL carries the admin's, and RoleURL and
// RoleOptions give each service its own.
package natstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/inkstream/inkstream/internal/natsx"
)

// Server is one embedded JetStream server.
type Server struct {
	*server.Server
	StoreDir string
	Port     int
}

// URL is the client URL of s, with the admin's credentials.
func (s *Server) URL() string { return adminURL(s.Port) }

// passwords are the users' passwords in this test process.
var passwords = sync.OnceValue(func() map[natsx.Role]string {
	m := map[natsx.Role]string{}
	for _, r := range natsx.AccountRoles {
		m[r] = rand.Text()
	}
	return m
})

// Users are the users every server of natstest lets in: one per role of
// natsx.AccountRoles, each with its permissions.
func Users() []natsx.User {
	var users []natsx.User
	for _, r := range natsx.AccountRoles {
		users = append(users, natsx.User{Role: r, Password: passwords()[r]})
	}
	return users
}

// Password is role's password in this test process.
func Password(role natsx.Role) string { return passwords()[role] }

func adminURL(port int) string {
	return fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", natsx.RoleAdmin, passwords()[natsx.RoleAdmin], port)
}

// RoleURL is urls (comma-separated, as a server's URL gives them) with
// role's credentials instead of any others.
func RoleURL(urls string, role natsx.Role) string {
	parts := strings.Split(StripCredentials(urls), ",")
	for i, p := range parts {
		if scheme, rest, ok := strings.Cut(p, "://"); ok {
			parts[i] = scheme + "://" + url.UserPassword(string(role), passwords()[role]).String() + "@" + rest
		}
	}
	return strings.Join(parts, ",")
}

// StripCredentials is urls without user names and passwords.
func StripCredentials(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(p), "://")
		if at := strings.LastIndexByte(rest, '@'); ok && at >= 0 {
			parts[i] = scheme + "://" + rest[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

// RoleOptions are the NATS settings of a process of role against urls
// with replicas: the role's user and password, looking its resources up
// (only the admin provisions).
func RoleOptions(urls string, role natsx.Role, replicas int) natsx.Options {
	o := Options(StripCredentials(urls), replicas)
	o.Name, o.User, o.Password, o.Provision = string(role), string(role), passwords()[role], false
	return o
}

// Restart shuts s down and starts it again on the same port and store.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	s.WaitForShutdown()
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Port: s.Port, StoreDir: s.StoreDir, NoLog: true, Users: Users()})
	if err != nil {
		tb.Fatalf("restart nats-server: %v", err)
	}
	s.Server = ns
}

// RunServer starts a JetStream server on a port it picks itself (so no
// other test can take it in between) with its store in a temporary
// directory, shut down when the test ends.
func RunServer(tb testing.TB) *Server {
	tb.Helper()
	return RunServerAt(tb, tb.TempDir(), -1)
}

// RunServerAt starts a JetStream server on port (-1: one it picks) with
// store dir.
func RunServerAt(tb testing.TB, dir string, port int) *Server {
	tb.Helper()
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Port: port, StoreDir: dir, NoLog: true, Users: Users()})
	if err != nil {
		tb.Fatalf("start nats-server: %v", err)
	}
	if port <= 0 {
		port = ns.Addr().(*net.TCPAddr).Port
	}
	s := &Server{Server: ns, StoreDir: dir, Port: port}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Cluster is a three-node JetStream cluster on loopback.
type Cluster struct {
	Nodes []*Server
	opts  []natsx.EmbeddedOptions
}

// URL lists the client URLs of every node, with the admin's credentials.
func (c *Cluster) URL() string {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	return strings.Join(urls, ",")
}

// RunCluster starts n JetStream servers routed into one cluster and waits
// until JetStream has a meta leader.
func RunCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	var c *Cluster
	var servers []*server.Server
	for attempt := 1; ; attempt++ {
		var err error
		if c, servers, err = startCluster(tb, n); err == nil {
			break
		}
		// A free port can be taken by another test between the probe and
		// the server's listen; the server then never gets ready. Try
		// again on other ports.
		if attempt == 3 {
			tb.Fatalf("start cluster node: %v", err)
		}
		tb.Logf("start cluster node: %v; trying other ports", err)
	}
	for i, s := range servers {
		c.Nodes = append(c.Nodes, &Server{Server: s, StoreDir: c.opts[i].StoreDir, Port: c.opts[i].Port})
	}
	tb.Cleanup(func() {
		for _, s := range c.Nodes {
			s.Shutdown()
		}
		for _, s := range c.Nodes {
			s.WaitForShutdown()
		}
	})
	WaitFor(tb, 30*time.Second, func() error {
		for _, s := range c.Nodes {
			if !s.Running() {
				continue
			}
			if s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader yet")
	})
	return c
}

// startCluster starts n routed servers on fresh ports; on failure it stops
// the ones that started.
func startCluster(tb testing.TB, n int) (*Cluster, []*server.Server, error) {
	tb.Helper()
	c := &Cluster{}
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = FreePort(tb)
	}
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := 0; i < n; i++ {
		o := natsx.EmbeddedOptions{
			ServerName:  fmt.Sprintf("n%d", i+1),
			Port:        FreePort(tb),
			StoreDir:    tb.TempDir(),
			ClusterName: "inkstream-test",
			ClusterPort: clusterPorts[i],
			Routes:      routes,
			NoLog:       true,
			Users:       Users(),
		}
		c.opts = append(c.opts, o)
	}
	// Start them concurrently: each waits for routes before it is ready.
	errs := make(chan error, n)
	servers := make([]*server.Server, n)
	for i := range c.opts {
		go func(i int) {
			s, err := natsx.StartEmbedded(c.opts[i])
			servers[i] = s
			errs <- err
		}(i)
	}
	var err error
	for range c.opts {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		for _, s := range servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
		return nil, nil, err
	}
	return c, servers, nil
}

// Restart starts a node that was shut down again, on its port and store.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	s, err := natsx.StartEmbedded(c.opts[i])
	if err != nil {
		tb.Fatalf("restart node %d: %v", i, err)
	}
	c.Nodes[i].Server = s
}

// WaitFor polls f until it returns nil or the timeout passes; then it fails
// the test with f's last error.
func WaitFor(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Context returns a context cancelled when the test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return FreePorts(tb, 1)[0]
}

// FreePorts returns n distinct loopback ports that were free a moment ago
// (another process can take one before the caller listens on it).
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Options are the NATS settings of a test process on url with replicas
// (as the admin, with a server's URL).
func Options(url string, replicas int) natsx.Options {
	return natsx.Options{URL: url, Name: "test", StreamReplicas: replicas, KVReplicas: replicas, DuplicateWindow: 2 * time.Minute, Provision: true}
}

// Connect connects to url (as the admin, with a server's URL), provisions
// the stream, bucket and consumer with replicas, and closes the connection
// when the test ends.
func Connect(tb testing.TB, url string, replicas int) (*natsx.Conn, natsx.Resources) {
	tb.Helper()
	return ConnectWith(tb, Options(url, replicas))
}

// ConnectWith is Connect with the settings o.
func ConnectWith(tb testing.TB, o natsx.Options) (*natsx.Conn, natsx.Resources) {
	tb.Helper()
	ctx := Context(tb)
	conn, err := natsx.Connect(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(conn.NC.Close)
	res, err := natsx.Provision(ctx, conn.JS, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("provision: %v", err)
	}
	return conn, res
}
