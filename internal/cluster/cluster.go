// Package cluster is the supervisor behind `make cluster` (cmd/inkcluster):
// on loopback, what deployments/docker-compose.yml runs in containers. It
// makes the NATS users' credentials in <data-dir>/auth (once; they are kept),
// starts three nats-servers from one config file (deployments/nats/nats.conf,
// copied beside them, each node's settings in $NATS_* environment
// variables), waits until JetStream has a meta leader, provisions stream,
// bucket and consumer at 3 replicas as the admin (inkstream provision),
// starts two each of command-api, query-api and projector, each as its
// own NATS user, waits for every /readyz and prints a table of the
// processes. It restarts nothing: a process that
// exits is reported and the rest keep running. On SIGINT or SIGTERM (the
// context's end) it stops the services, then the NATS nodes.
package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/procs"
)

// Config is one cluster.
type Config struct {
	DataDir      string        // JetStream stores (<dir>/nats-N) and logs (<dir>/logs)
	BinDir       string        // nats-server, command-api, query-api, projector
	NATSConfig   string        // the nodes' config file
	PortOffset   int           // added to every port
	ReadyTimeout time.Duration // each process may take this long to be ready
	StopTimeout  time.Duration // then SIGKILL
}

// envPrefix is the prefix of the environment variable each flag of Main
// falls back on: -port-offset reads INKSTREAM_CLUSTER_PORT_OFFSET.
const envPrefix = "INKSTREAM_CLUSTER_"

// ErrUsage marks a bad flag, argument or environment variable.
var ErrUsage = errors.New("usage")

// Main is cmd/inkcluster: the flags (the environment first, the command
// line wins), then Run.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("inkcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.DataDir, "data-dir", "data/cluster", "JetStream stores and logs; kept from one start to the next")
	fs.StringVar(&c.BinDir, "bin", "bin", "directory with nats-server, inkstream, command-api, query-api and projector (make build)")
	fs.StringVar(&c.NATSConfig, "nats-config", "deployments/nats/nats.conf", "config file of the NATS nodes")
	fs.IntVar(&c.PortOffset, "port-offset", 0, "added to every port (NATS 4222-4224, 6222-6224, 8222-8224; services 8080-8082, 8090-8092)")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", time.Minute, "time each process may take to be ready")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", 30*time.Second, "time each process may take to stop after SIGTERM, before SIGKILL")
	fs.Bool("version", false, "print the version (from the build information) and exit")
	envName := func(flagName string) string {
		if flagName == "version" {
			return ""
		}
		return config.EnvNameWith(envPrefix, flagName)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: inkcluster [flags]\n\nRuns a 3-node NATS cluster and two of each inkstream service on loopback until SIGINT or SIGTERM.\nEvery flag also reads %s<FLAG> (upper case, '-' as '_').\n", envPrefix)
		config.PrintFlags(stderr, fs, envName)
	}
	if err := config.ApplyEnv(fs, getenv, envName); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := config.PrintVersion(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", ErrUsage, fs.Args())
	}
	return Run(ctx, c, stdout)
}

// member is one process of the cluster.
type member struct {
	name, bin string
	args, env []string
	ready     string   // answers 200 once the process is ready
	addrs     []string // for the table
	ports     []int    // must be free before anything starts
}

// The files of the cluster in its data directory.
func (c Config) authDir() string    { return filepath.Join(c.DataDir, "auth") }
func (c Config) natsConfig() string { return filepath.Join(c.DataDir, "nats.conf") }

// members lays the cluster out: the three NATS nodes, then the services.
// It also returns the NATS URL of the nodes.
func (c Config) members() ([]member, string) {
	port := func(base int) int { return base + c.PortOffset }
	var urls, routes []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", port(4222+i)))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", port(6222+i)))
	}
	var ms []member
	for i := range 3 {
		name := fmt.Sprintf("nats-%d", i+1)
		client, route, monitor := port(4222+i), port(6222+i), port(8222+i)
		ms = append(ms, member{
			name: name, bin: "nats-server", args: []string{"-c", c.natsConfig()},
			// The variables of deployments/nats/nats.conf; nats-server
			// parses each value as config syntax, hence the quotes and brackets.
			env: []string{
				"NATS_SERVER_NAME=" + name,
				fmt.Sprintf("NATS_LISTEN=127.0.0.1:%d", client),
				fmt.Sprintf("NATS_HTTP=127.0.0.1:%d", monitor),
				fmt.Sprintf("NATS_CLUSTER_LISTEN=127.0.0.1:%d", route),
				"NATS_ROUTES=[" + strings.Join(routes, ", ") + "]",
				"NATS_STORE_DIR=" + `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filepath.Join(c.DataDir, name)) + `"`,
			},
			ready: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-meta-only=true", monitor),
			addrs: []string{urls[i], fmt.Sprintf("http://127.0.0.1:%d (monitoring)", monitor), fmt.Sprintf("127.0.0.1:%d (routes)", route)},
			ports: []int{client, route, monitor},
		})
	}
	natsURL := strings.Join(urls, ",")
	for _, s := range []struct {
		bin  string
		port int
	}{{"command-api", 8080}, {"query-api", 8081}, {"projector", 8082}} {
		for i := range 2 {
			p := port(s.port + 10*i)
			addr := fmt.Sprintf("127.0.0.1:%d", p)
			name := fmt.Sprintf("%s-%d", s.bin, i+1)
			ms = append(ms, member{
				name: name, bin: s.bin,
				args: []string{"-nats-url", natsURL, "-listen", addr, "-nats-name", name, "-stream-replicas", "3", "-kv-replicas", "3",
					"-nats-nkey", natsx.Credentials{Dir: c.authDir()}.SeedFile(natsx.Role(s.bin))},
				ready: "http://" + addr + "/readyz", addrs: []string{"http://" + addr}, ports: []int{p},
			})
			if s.bin != "projector" { // the APIs trust the development key (see Run)
				ms[len(ms)-1].args = append(ms[len(ms)-1].args, "-auth-jwks-file", filepath.Join(c.DataDir, auth.DevJWKSFile))
			}
		}
	}
	return ms, natsURL
}

// check makes the paths absolute and checks what Run needs before it starts anything.
func (c *Config) check() error {
	var errs []error
	for _, p := range []*string{&c.DataDir, &c.BinDir, &c.NATSConfig} {
		abs, err := filepath.Abs(*p)
		errs = append(errs, err)
		*p = abs
	}
	if _, err := os.Stat(c.NATSConfig); err != nil {
		errs = append(errs, fmt.Errorf("NATS config: %w", err))
	}
	for _, bin := range []string{"nats-server", "inkstream", "command-api", "query-api", "projector"} {
		if _, err := os.Stat(filepath.Join(c.BinDir, bin)); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing from %s (make build)", bin, c.BinDir))
		}
	}
	if c.PortOffset < 0 || 8224+c.PortOffset > 65535 {
		errs = append(errs, fmt.Errorf("-port-offset %d puts ports outside 1-65535", c.PortOffset))
	}
	if c.ReadyTimeout <= 0 || c.StopTimeout <= 0 {
		errs = append(errs, errors.New("-ready-timeout and -stop-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Run starts the cluster and supervises it until ctx ends; then it stops
// the services, then the NATS nodes, and returns nil if each of them that
// was still running stopped cleanly. Progress and the table go to out.
func Run(ctx context.Context, c Config, out io.Writer) error {
	if err := c.check(); err != nil {
		return err
	}
	ms, natsURL := c.members()
	for _, m := range ms {
		for _, p := range m.ports {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return fmt.Errorf("127.0.0.1:%d is already in use (another cluster, or make run? -port-offset moves every port)", p)
			}
			l.Close()
		}
	}
	s := &supervisor{cfg: c, out: out, ms: ms, exited: make(chan int, len(ms)), gone: map[int]bool{}}
	s.group.Dir = filepath.Join(c.DataDir, "logs")
	if err := os.MkdirAll(s.group.Dir, 0o755); err != nil {
		return err
	}
	// The development key of the data directory, made on the first start;
	// the APIs trust its public half, `inkstream token -data-dir` signs with it.
	if err := auth.WriteDevJWKS(c.DataDir); err != nil {
		return fmt.Errorf("development key: %w", err)
	}
	s.say("tokens: inkstream token -data-dir %s -sub <user> -roles author|editor|admin", c.DataDir)
	creds, err := natsx.DeploymentCredentials(c.authDir(), natsURL)
	if err != nil {
		return err
	}
	// The config includes auth/accounts.conf from its own directory.
	conf, err := os.ReadFile(c.NATSConfig)
	if err == nil {
		err = os.WriteFile(c.natsConfig(), conf, 0o600)
	}
	if err != nil {
		return fmt.Errorf("NATS config: %w", err)
	}
	s.say("NATS users' credentials in %s (kept from one start to the next)", creds.Dir)
	s.say("starting nats-1..3 (data and logs in %s)", c.DataDir)
	err = s.start(ctx, 0, 3)
	if err == nil {
		s.say("the NATS cluster has a JetStream meta leader; provisioning stream, bucket and consumer at 3 replicas")
		err = s.provision(ctx, natsURL, creds)
	}
	if err == nil {
		s.say("starting the services")
		err = s.start(ctx, 3, len(ms))
	}
	if ctx.Err() != nil {
		return s.shutdown()
	}
	if err != nil {
		return errors.Join(err, s.shutdown())
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tADDRESSES")
	for i, p := range s.started {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Name, p.Pid(), strings.Join(ms[i].addrs, "  "))
	}
	tw.Flush()
	s.say("NATS_URL=%s; stream ARTICLES and bucket articles with 3 replicas", natsURL)
	s.say("NATS CLI as the admin: export NATS_CONTEXT=%s (server commands: nats --context %s server list)",
		creds.ContextFile(natsx.RoleAdmin), creds.ContextFile(natsx.RoleSys))
	s.say("ready; Ctrl-C (SIGINT) or SIGTERM stops the services, then the NATS nodes")
	for {
		select {
		case <-ctx.Done():
			return s.shutdown()
		case i := <-s.exited:
			s.reap(i)
			if len(s.gone) == len(ms) {
				return errors.New("every process has exited")
			}
		}
	}
}

// supervisor is one run of the cluster.
type supervisor struct {
	cfg     Config
	out     io.Writer
	group   procs.Group
	ms      []member
	started []*procs.Proc // of ms[:len(started)]
	exited  chan int      // index of a started process that has exited
	gone    map[int]bool  // reported as exited
}

func (s *supervisor) say(format string, args ...any) {
	fmt.Fprintf(s.out, "inkcluster: "+format+"\n", args...)
}

// start starts ms[from:to] and waits until each is ready.
func (s *supervisor) start(ctx context.Context, from, to int) error {
	for i, m := range s.ms[from:to] {
		p, err := s.group.Start(m.name, filepath.Join(s.cfg.BinDir, m.bin), m.args, m.env)
		if err != nil {
			return err
		}
		s.started = append(s.started, p)
		go func() { <-p.Done(); s.exited <- from + i }()
	}
	for i, m := range s.ms[from:to] {
		if err := procs.WaitHTTP(ctx, s.started[from+i], m.ready, 100*time.Millisecond, s.cfg.ReadyTimeout); err != nil {
			return err
		}
	}
	return nil
}

// provision runs `inkstream provision` as the admin, at 3 replicas, and
// waits for it: the services only look their resources up.
func (s *supervisor) provision(ctx context.Context, natsURL string, creds natsx.Credentials) error {
	p, err := s.group.Start("provision", filepath.Join(s.cfg.BinDir, "inkstream"), []string{"provision",
		"-nats-url", natsURL, "-nats-nkey", creds.SeedFile(natsx.RoleAdmin), "-stream-replicas", "3", "-kv-replicas", "3",
		"-connect-timeout", s.cfg.ReadyTimeout.String()}, nil)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		_ = p.Stop(s.cfg.StopTimeout)
		return ctx.Err()
	}
	if p.Err() != nil {
		return p.DiedError()
	}
	return nil
}

// reap reports that started process i has exited, and how to start it again.
func (s *supervisor) reap(i int) {
	s.gone[i] = true
	p := s.started[i]
	status := "exit status 0"
	if p.Err() != nil {
		status = p.Err().Error()
	}
	s.say("%s (pid %d) exited: %s; log: %s", p.Name, p.Pid(), status, p.Log)
	s.say("to start it again by hand: %s", s.ms[i].commandLine(s.cfg.BinDir))
}

// shutdown stops every process still running, the last started first: the
// services, then the NATS nodes.
func (s *supervisor) shutdown() error {
	for len(s.exited) > 0 {
		s.reap(<-s.exited)
	}
	s.say("stopping the services, then the NATS nodes")
	var failed []string
	s.group.StopAll(s.cfg.StopTimeout, func(p *procs.Proc, err error) {
		switch i := slices.Index(s.started, p); {
		case i < 0: // the one-shot provision, done long ago
		case s.gone[i]:
		case err != nil:
			s.say("%s (pid %d) %v; log: %s", p.Name, p.Pid(), err, p.Log)
			failed = append(failed, p.Name)
		default:
			s.say("stopped %s", p.Name)
		}
	})
	if len(failed) > 0 {
		return fmt.Errorf("%s did not stop cleanly", strings.Join(failed, ", "))
	}
	return nil
}

// commandLine is the shell command that starts m as Run does.
func (m member) commandLine(binDir string) string {
	var words []string
	for _, kv := range m.env {
		k, v, _ := strings.Cut(kv, "=")
		words = append(words, k+"="+shellQuote(v))
	}
	for _, w := range append([]string{filepath.Join(binDir, m.bin)}, m.args...) {
		words = append(words, shellQuote(w))
	}
	return strings.Join(words, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\$`[]*?;&|<>(){}#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
