// Package deployments_test checks the deployment files against the code they
// deploy: docker-compose.yml against the flags of each binary and the NATS
// configs, the NATS configs with the real nats-server parser and by running
// them as a cluster, and the Dockerfile against the module.
package deployments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// The inkstream processes an image command may name.
var processes = []string{"command-api", "query-api", "projector", "inkstream"}

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string `yaml:"image"`
	Build       any    `yaml:"build"`
	Command     any    `yaml:"command"`
	Entrypoint  any    `yaml:"entrypoint"`
	Environment any    `yaml:"environment"`
	Ports       []any  `yaml:"ports"`
	Volumes     []any  `yaml:"volumes"`
	DependsOn   any    `yaml:"depends_on"`
}

func loadCompose(tb testing.TB) composeFile {
	tb.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		tb.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		tb.Fatal("docker-compose.yml has no services")
	}
	return f
}

// words is a compose command or entrypoint as a list (string form split on blanks).
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, w := range v {
			out[i] = fmt.Sprint(w)
		}
		return out
	}
	return nil
}

// env is the environment of a service, from the map or the list form.
func env(tb testing.TB, name string, s composeService) map[string]string {
	tb.Helper()
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	default:
		tb.Fatalf("service %s: environment is a %T", name, e)
	}
	return out
}

// tools are the images of the services that watch inkstream, by the name
// the tests know them by.
var tools = map[string]string{
	"prom/prometheus":                 "prometheus",
	"grafana/grafana":                 "grafana",
	"natsio/prometheus-nats-exporter": "nats-exporter",
}

// tool is the name of the watching service s runs, "" for none.
func tool(s composeService) string {
	repo, _, _ := strings.Cut(s.Image, ":")
	return tools[repo]
}

// process names the binary a service runs: nats-server for the NATS image,
// a tool's name for the images of tools, else the base name of the first
// word of its entrypoint or command.
func process(tb testing.TB, name string, s composeService) string {
	tb.Helper()
	if isNATS(s) {
		return "nats-server"
	}
	if t := tool(s); t != "" {
		return t
	}
	cmd := append(words(s.Entrypoint), words(s.Command)...)
	if len(cmd) == 0 {
		tb.Fatalf("service %s names no command, so which binary it runs is the image's choice", name)
	}
	p := path.Base(cmd[0])
	if !slices.Contains(processes, p) {
		tb.Fatalf("service %s runs %q, not one of %v", name, cmd[0], processes)
	}
	return p
}

// processKey is what FlagNames knows the process of a service as: its
// binary, and for an inkstream subcommand (a one-shot such as creds or
// provision) "inkstream <subcommand>".
func processKey(tb testing.TB, name string, s composeService) string {
	tb.Helper()
	p := process(tb, name, s)
	if sub := subcommand(s); p == "inkstream" && sub != "" {
		return p + " " + sub
	}
	return p
}

// subcommand is the inkstream subcommand a service runs, if any.
func subcommand(s composeService) string {
	cmd := append(words(s.Entrypoint), words(s.Command)...)
	if len(cmd) > 1 && path.Base(cmd[0]) == "inkstream" && !strings.HasPrefix(cmd[1], "-") {
		return cmd[1]
	}
	return ""
}

// subcommandArgs are the arguments after a service's subcommand.
func subcommandArgs(s composeService) []string {
	return append(words(s.Entrypoint), words(s.Command)...)[2:]
}

func isNATS(s composeService) bool {
	return s.Image == "nats" || strings.HasPrefix(s.Image, "nats:")
}

func natsServices(f composeFile) []string {
	var out []string
	for name, s := range f.Services {
		if isNATS(s) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func sortedNames(f composeFile) []string {
	var out []string
	for name := range f.Services {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

type portMapping struct {
	hostIP    string
	published int // 0 when the port is not published
	target    int
	protocol  string
}

func ports(tb testing.TB, name string, s composeService) []portMapping {
	tb.Helper()
	var out []portMapping
	atoi := func(v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			tb.Fatalf("service %s: bad port %q", name, v)
		}
		return n
	}
	for _, p := range s.Ports {
		m := portMapping{protocol: "tcp"}
		switch p := p.(type) {
		case string:
			spec := p
			if before, proto, ok := strings.Cut(spec, "/"); ok {
				spec, m.protocol = before, proto
			}
			parts := strings.Split(spec, ":")
			switch len(parts) {
			case 1:
				m.target = atoi(parts[0])
			case 2:
				m.published, m.target = atoi(parts[0]), atoi(parts[1])
			case 3:
				m.hostIP, m.published, m.target = parts[0], atoi(parts[1]), atoi(parts[2])
			default:
				tb.Fatalf("service %s: cannot read port %q (IPv6 and ranges are not supported here)", name, p)
			}
		case int:
			m.target = p
		case map[string]any:
			m.target = atoi(fmt.Sprint(p["target"]))
			if v, ok := p["published"]; ok {
				m.published = atoi(fmt.Sprint(v))
			}
			if v, ok := p["host_ip"]; ok {
				m.hostIP = fmt.Sprint(v)
			}
			if v, ok := p["protocol"]; ok {
				m.protocol = fmt.Sprint(v)
			}
		default:
			tb.Fatalf("service %s: port %v is a %T", name, p, p)
		}
		out = append(out, m)
	}
	return out
}

type mount struct {
	source, target string
	bind           bool // a host path, not a named volume
}

func mounts(tb testing.TB, name string, s composeService) []mount {
	tb.Helper()
	var out []mount
	for _, v := range s.Volumes {
		var m mount
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				tb.Fatalf("service %s: volume %q has no target", name, v)
			}
			m.source, m.target = parts[0], parts[1]
		case map[string]any:
			m.source, m.target = fmt.Sprint(v["source"]), fmt.Sprint(v["target"])
		default:
			tb.Fatalf("service %s: volume %v is a %T", name, v, v)
		}
		m.bind = strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~")
		out = append(out, m)
	}
	return out
}

// natsConfigPath is the host file that service name mounts as the config its
// command names with -c or --config.
func natsConfigPath(tb testing.TB, name string, s composeService) string {
	tb.Helper()
	cmd := words(s.Command)
	target := ""
	for i, w := range cmd {
		if (w == "-c" || w == "--config") && i+1 < len(cmd) {
			target = cmd[i+1]
		}
		if v, ok := strings.CutPrefix(w, "--config="); ok {
			target = v
		}
	}
	if target == "" {
		tb.Fatalf("service %s: command %q names no config file (-c)", name, cmd)
	}
	for _, m := range mounts(tb, name, s) {
		if m.bind && m.target == target {
			return filepath.FromSlash(m.source)
		}
	}
	tb.Fatalf("service %s: config %s is not a file mounted from the host", name, target)
	return ""
}

// composeAuth makes the credentials as the service creds would, into a
// temporary directory, for servers urls.
func composeAuth(tb testing.TB, f composeFile, urls string) natsx.Credentials {
	tb.Helper()
	credsVolume(tb, f)
	c, err := natsx.DeploymentCredentials(filepath.Join(tb.TempDir(), "creds"), urls)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// natsOptions parses the config file of NATS service name with the
// nats-server parser, with the environment variables the service sets
// and the credentials auth where the service mounts the volume creds.
func natsOptions(tb testing.TB, f composeFile, name string, auth natsx.Credentials) *server.Options {
	tb.Helper()
	s := f.Services[name]
	file := natsConfigPath(tb, name, s)
	target := configTarget(tb, name, s)
	vol, _ := credsVolume(tb, f)
	// The config includes auth/accounts.conf from its own directory: the
	// service must mount the credentials there.
	mounted := false
	for _, m := range mounts(tb, name, s) {
		if m.source == vol && path.Clean(m.target) == path.Join(path.Dir(target), "auth") {
			mounted = true
		}
	}
	if !mounted {
		tb.Fatalf("service %s does not mount volume %s at %s, where its config includes auth/accounts.conf", name, vol, path.Join(path.Dir(target), "auth"))
	}
	dir := tb.TempDir()
	conf, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), conf, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Symlink(auth.Dir, filepath.Join(dir, "auth")); err != nil {
		tb.Fatal(err)
	}
	for k, v := range env(tb, name, s) {
		tb.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		tb.Fatalf("service %s: nats-server rejects %s: %v", name, file, err)
	}
	return opts
}

// configTarget is where service name mounts its config file (-c).
func configTarget(tb testing.TB, name string, s composeService) string {
	tb.Helper()
	cmd := words(s.Command)
	for i, w := range cmd {
		if (w == "-c" || w == "--config") && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(w, "--config="); ok {
			return v
		}
	}
	tb.Fatalf("service %s names no config file", name)
	return ""
}

func TestComposeEnvironmentNamesRealFlags(t *testing.T) {
	f := loadCompose(t)
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		p := processKey(t, name, s)
		known := map[string]bool{}
		if slices.Contains(processes, p) || strings.HasPrefix(p, "inkstream ") {
			flags, err := config.FlagNames(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, fl := range flags {
				known[config.EnvName(fl)] = true
			}
		}
		for k := range env(t, name, s) {
			if strings.HasPrefix(k, config.EnvPrefix) && !known[k] {
				t.Errorf("service %s (%s): %s is not the environment variable of any flag of %s", name, p, k, p)
			}
		}
	}
}

// TestComposeServicesConfigure parses each inkstream service's environment
// with the real config parser of its binary and checks the result: valid,
// three replicas, reachable from outside its container on a published port.
func TestComposeServicesConfigure(t *testing.T) {
	f := loadCompose(t)
	perProcess := map[string]int{}
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		p := process(t, name, s)
		if !slices.Contains(processes, p) {
			continue
		}
		if sub := subcommand(s); sub != "" {
			checkOneShot(t, f, name, s, sub)
			continue
		}
		perProcess[p]++
		e := env(t, name, s)
		getenv := func(k string) string { return e[k] }
		var (
			common config.Common
			listen string
			err    error
		)
		switch p {
		case "command-api":
			var c config.CommandAPI
			c, err = config.ParseCommandAPI(p, nil, getenv, io.Discard)
			common, listen = c.Common, c.Listen
		case "query-api":
			var c config.QueryAPI
			c, err = config.ParseQueryAPI(p, nil, getenv, io.Discard)
			common, listen = c.Common, c.Listen
		case "projector":
			var c config.Projector
			c, err = config.ParseProjector(p, nil, getenv, io.Discard)
			common, listen = c.Common, c.Listen
		default:
			t.Errorf("service %s runs %s; a deployment scales the separate binaries", name, p)
			continue
		}
		if err != nil {
			t.Errorf("service %s: %s rejects its environment: %v", name, p, err)
			continue
		}
		if common.NATS.StreamReplicas != 3 || common.NATS.KVReplicas != 3 {
			t.Errorf("service %s: stream replicas %d, KV replicas %d; the 3-node cluster wants 3 and 3",
				name, common.NATS.StreamReplicas, common.NATS.KVReplicas)
		}
		if common.LogFormat != "json" {
			t.Errorf("service %s: log format %q, want json", name, common.LogFormat)
		}
		if want := natsx.Role(p); credsRole(t, f, name, s, common.NATS.NKey) != want {
			t.Errorf("service %s connects with nkey %q, want %s's in the volume creds", name, common.NATS.NKey, want)
		}
		if common.NATS.Provision {
			t.Errorf("service %s provisions; that is the admin's job (service provision)", name)
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("service %s: listen %q: %v", name, listen, err)
			continue
		}
		if host != "0.0.0.0" && host != "" && host != "::" {
			t.Errorf("service %s listens on %s, which cannot be reached from outside its container", name, listen)
		}
		published := false
		for _, m := range ports(t, name, s) {
			if strconv.Itoa(m.target) == port && m.published != 0 {
				published = true
			}
		}
		if !published {
			t.Errorf("service %s listens on port %s but publishes no host port for it (ports %v)", name, port, s.Ports)
		}
		if s.Build == nil {
			t.Errorf("service %s: no build; it should be built from deployments/Dockerfile", name)
		}
	}
	for _, p := range []string{"command-api", "query-api", "projector"} {
		if perProcess[p] < 2 {
			t.Errorf("%d service(s) run %s, want at least 2", perProcess[p], p)
		}
	}
}

// credsVolume is the named volume the service creds writes the
// credentials into (its -dir).
func credsVolume(tb testing.TB, f composeFile) (volume, dir string) {
	tb.Helper()
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		if isNATS(s) || subcommand(s) != "creds" {
			continue
		}
		e := env(tb, name, s)
		c, err := config.ParseCreds(subcommandArgs(s), func(k string) string { return e[k] }, io.Discard)
		if err != nil {
			tb.Fatalf("service %s: inkstream creds rejects its configuration: %v", name, err)
		}
		for _, m := range mounts(tb, name, s) {
			if !m.bind && path.Clean(m.target) == path.Clean(c.Dir) {
				return m.source, c.Dir
			}
		}
		tb.Fatalf("service %s writes the credentials into %s, which is no named volume", name, c.Dir)
	}
	tb.Fatal("no service runs inkstream creds: the NATS nodes would have no users")
	return "", ""
}

// credsRole is the role whose nkey seed file is seed (a path in a
// container), if service name mounts the credentials volume there.
func credsRole(tb testing.TB, f composeFile, name string, s composeService, seed string) natsx.Role {
	tb.Helper()
	vol, _ := credsVolume(tb, f)
	for _, m := range mounts(tb, name, s) {
		if m.source == vol && path.Dir(seed) == path.Clean(m.target) {
			return natsx.Role(strings.TrimSuffix(path.Base(seed), ".nk"))
		}
	}
	return ""
}

// checkOneShot checks a service that runs an inkstream subcommand once:
// creds, or provision with the admin's nkey at 3 replicas.
func checkOneShot(tb testing.TB, f composeFile, name string, s composeService, sub string) {
	tb.Helper()
	e := env(tb, name, s)
	getenv := func(k string) string { return e[k] }
	switch sub {
	case "creds":
		credsVolume(tb, f)
	case "provision":
		c, err := config.ParseAdmin(sub, subcommandArgs(s), getenv, io.Discard)
		if err != nil {
			tb.Fatalf("service %s: inkstream provision rejects its configuration: %v", name, err)
		}
		if c.NATS.StreamReplicas != 3 || c.NATS.KVReplicas != 3 {
			tb.Errorf("service %s provisions %d and %d replicas, want 3 and 3", name, c.NATS.StreamReplicas, c.NATS.KVReplicas)
		}
		if credsRole(tb, f, name, s, c.NATS.NKey) != natsx.RoleAdmin {
			tb.Errorf("service %s provisions with nkey %q, not the admin's in the volume creds", name, c.NATS.NKey)
		}
	default:
		tb.Errorf("service %s runs inkstream %s, which no deployment needs", name, sub)
	}
}

func TestComposeNATSURLsNameNATSServices(t *testing.T) {
	f := loadCompose(t)
	nodes := natsServices(f)
	if len(nodes) != 3 {
		t.Fatalf("NATS services %v, want 3", nodes)
	}
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		e := env(t, name, s)
		for _, k := range []string{"NATS_URL", config.EnvName("nats-url")} {
			v, ok := e[k]
			if !ok {
				continue
			}
			var hosts []string
			for _, u := range strings.Split(v, ",") {
				pu, err := url.Parse(strings.TrimSpace(u))
				if err != nil || pu.Scheme != "nats" || pu.Hostname() == "" {
					t.Errorf("service %s: %s has %q, not a nats://host:port URL", name, k, u)
					continue
				}
				host := pu.Hostname()
				hosts = append(hosts, host)
				target, ok := f.Services[host]
				if !ok {
					t.Errorf("service %s: %s names host %q, which is no compose service", name, k, host)
					continue
				}
				if !isNATS(target) {
					t.Errorf("service %s: %s names %q, which is not a NATS service", name, k, host)
					continue
				}
				opts := natsOptions(t, f, host, composeAuth(t, f, "nats://127.0.0.1:4222"))
				if pu.Port() != strconv.Itoa(opts.Port) {
					t.Errorf("service %s: %s names %s, but %s listens for clients on %d", name, k, pu.Host, host, opts.Port)
				}
			}
			slices.Sort(hosts)
			if !slices.Equal(hosts, nodes) {
				t.Errorf("service %s: %s names %v; list every node %v so that losing one changes nothing", name, k, hosts, nodes)
			}
		}
		if slices.Contains(processes, process(t, name, s)) {
			if _, ok := e[config.EnvName("nats-url")]; !ok {
				t.Errorf("service %s sets no %s, so it would dial 127.0.0.1 in its own container", name, config.EnvName("nats-url"))
			}
		}
	}
}

func TestComposePublishedPortsDoNotClash(t *testing.T) {
	f := loadCompose(t)
	seen := map[string]string{}
	n := 0
	for _, name := range sortedNames(f) {
		for _, m := range ports(t, name, f.Services[name]) {
			if m.published == 0 {
				continue
			}
			n++
			// Any host address clashes with the wildcard, so key on port and protocol.
			key := fmt.Sprintf("%d/%s", m.published, m.protocol)
			if other, ok := seen[key]; ok {
				t.Errorf("host port %s is published by both %s and %s", key, other, name)
			}
			seen[key] = name
		}
	}
	if n == 0 {
		t.Error("no service publishes a port")
	}
}

func TestComposeReferencedFilesExist(t *testing.T) {
	f := loadCompose(t)
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		for _, m := range mounts(t, name, s) {
			if m.bind {
				if _, err := os.Stat(filepath.FromSlash(m.source)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, m.source, err)
				}
			} else if _, ok := f.Volumes[m.source]; !ok {
				t.Errorf("service %s mounts volume %q, which the top-level volumes do not declare", name, m.source)
			}
		}
		if isNATS(s) {
			natsConfigPath(t, name, s)
		}
		if s.Build != nil {
			ctx, dockerfile := ".", "Dockerfile"
			switch b := s.Build.(type) {
			case string:
				ctx = b
			case map[string]any:
				if v, ok := b["context"]; ok {
					ctx = fmt.Sprint(v)
				}
				if v, ok := b["dockerfile"]; ok {
					dockerfile = fmt.Sprint(v)
				}
			}
			if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
				t.Errorf("service %s: build context %s is not the module root: %v", name, ctx, err)
			}
			if _, err := os.Stat(filepath.Join(ctx, filepath.FromSlash(dockerfile))); err != nil {
				t.Errorf("service %s: dockerfile: %v", name, err)
			}
		}
		var deps []string
		switch d := s.DependsOn.(type) {
		case []any:
			for _, v := range d {
				deps = append(deps, fmt.Sprint(v))
			}
		case map[string]any:
			for k := range d {
				deps = append(deps, k)
			}
		}
		for _, d := range deps {
			if _, ok := f.Services[d]; !ok {
				t.Errorf("service %s depends on %q, which is no service", name, d)
			}
		}
		if !isNATS(s) && tool(s) == "" && len(deps) == 0 && subcommand(s) != "creds" {
			t.Errorf("service %s depends on no NATS service", name)
		}
	}
}

// TestComposeNATSConfigs reads each node's config with the nats-server
// parser, checks it against the compose file, and runs the three as a
// cluster on loopback (only addresses and store dirs replaced) to provision
// the real stream, bucket and consumer with 3 replicas.
func TestComposeNATSConfigs(t *testing.T) {
	f := loadCompose(t)
	nodes := natsServices(f)
	if len(nodes) != 3 {
		t.Fatalf("NATS services %v, want 3", nodes)
	}
	var all []*server.Options
	auth := composeAuth(t, f, "nats://127.0.0.1:4222")
	for _, name := range nodes {
		s := f.Services[name]
		opts := natsOptions(t, f, name, auth)
		checkNodeOptions(t, name, opts, auth)
		if opts.ServerName != name {
			t.Errorf("%s: server_name %q, want the service name", name, opts.ServerName)
		}
		var hosts []string
		for _, r := range opts.Routes {
			hosts = append(hosts, r.Hostname())
			if r.Port() != strconv.Itoa(opts.Cluster.Port) {
				t.Errorf("%s: route %s, but the cluster port is %d", name, r, opts.Cluster.Port)
			}
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, nodes) {
			t.Errorf("%s: routes to %v, want %v", name, hosts, nodes)
		}
		persistent := false
		for _, m := range mounts(t, name, s) {
			if !m.bind && (opts.StoreDir == m.target || strings.HasPrefix(opts.StoreDir, strings.TrimSuffix(m.target, "/")+"/")) {
				persistent = true
			}
		}
		if !persistent {
			t.Errorf("%s: store_dir %s is on no named volume, so a new container loses the stream", name, opts.StoreDir)
		}
		targets := map[int]bool{}
		for _, m := range ports(t, name, s) {
			if m.published != 0 {
				targets[m.target] = true
			}
		}
		if !targets[opts.Port] || !targets[opts.HTTPPort] {
			t.Errorf("%s: client port %d and monitoring port %d should both be published (ports %v)", name, opts.Port, opts.HTTPPort, s.Ports)
		}
		all = append(all, opts)
	}
	if t.Failed() {
		return
	}

	// Run them: loopback addresses instead of container names, a temp store.
	loopback := func(all []*server.Options) {
		ports := natstest.FreePorts(t, 2*len(all))
		client, route := ports[:len(all)], ports[len(all):]
		var routeURLs []string
		for _, p := range route {
			routeURLs = append(routeURLs, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
		}
		for i, opts := range all {
			opts.Host, opts.Port = "127.0.0.1", client[i]
			opts.HTTPPort = 0
			opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", route[i]
			opts.Routes = server.RoutesFromStr(strings.Join(routeURLs, ","))
			opts.StoreDir = t.TempDir()
		}
	}
	loopback(all)
	urls := startCluster(t, all, loopback)

	// The services' own configuration, pointed at the loopback nodes, with
	// the credentials where the volume holds them.
	serviceNATS := func(name string) natsx.Options {
		s := f.Services[name]
		e := env(t, name, s)
		e[config.EnvName("nats-url")] = strings.Join(urls, ",")
		getenv := func(k string) string { return e[k] }
		var c config.Common
		switch p := processKey(t, name, s); p {
		case "inkstream provision":
			a, err := config.ParseAdmin("provision", subcommandArgs(s), getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			c = a.Common
		case "command-api", "projector", "query-api":
			q, err := config.ParseQueryAPI(p, nil, getenv, io.Discard) // the flags every service shares
			if err != nil {
				t.Fatal(err)
			}
			c = q.Common
		default:
			t.Fatalf("service %s runs %s", name, p)
		}
		c.NATS.NKey = filepath.Join(auth.Dir, path.Base(c.NATS.NKey))
		return c.NATS
	}
	checkClusterServes(t, urls, auth, serviceNATS)
}

// checkNodeOptions checks what every node of either cluster needs: among
// them, that nobody gets in without credentials, and that each user of
// auth has its role's permissions.
func checkNodeOptions(tb testing.TB, name string, opts *server.Options, auth natsx.Credentials) {
	tb.Helper()
	if !opts.JetStream {
		tb.Errorf("%s: JetStream is not enabled", name)
	}
	if opts.StoreDir == "" {
		tb.Errorf("%s: no JetStream store_dir", name)
	}
	if opts.Cluster.Name != "inkstream" {
		tb.Errorf("%s: cluster name %q, want inkstream", name, opts.Cluster.Name)
	}
	if len(opts.Routes) != 3 {
		tb.Errorf("%s: %d routes, want 3", name, len(opts.Routes))
	}
	if opts.ServerName == "" {
		tb.Errorf("%s: no server_name; JetStream peers and `nats server list` show it", name)
	}
	if opts.HTTPPort == 0 {
		tb.Errorf("%s: monitoring is off; the health checks need /healthz", name)
	}
	if opts.SystemAccount != "SYS" {
		tb.Errorf("%s: system account %q, want SYS (for `nats server list`)", name, opts.SystemAccount)
	}
	if opts.NoAuthUser != "" || len(opts.Users) > 0 {
		tb.Errorf("%s: no_auth_user %q and %d password users: only the nkey users of inkstream creds may connect", name, opts.NoAuthUser, len(opts.Users))
	}
	users, err := auth.Users(append(natsx.AccountRoles, natsx.RoleSys)...)
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range users {
		i := slices.IndexFunc(opts.Nkeys, func(n *server.NkeyUser) bool { return n.Nkey == u.NKey })
		if i < 0 {
			tb.Errorf("%s: no user for role %s", name, u.Role)
			continue
		}
		n := opts.Nkeys[i]
		want := "INKSTREAM"
		if u.Role == natsx.RoleSys {
			want = "SYS"
		}
		if n.Account == nil || n.Account.Name != want {
			tb.Errorf("%s: role %s is in account %v, want %s", name, u.Role, n.Account, want)
		}
		got, _ := json.Marshal(n.Permissions)
		if want, _ := json.Marshal(natsx.Permissions(u.Role)); string(got) != string(want) {
			tb.Errorf("%s: role %s has permissions %s, want %s", name, u.Role, got, want)
		}
	}
	if len(opts.Nkeys) != len(users) {
		tb.Errorf("%s: %d nkey users, want %d", name, len(opts.Nkeys), len(users))
	}
}

// startCluster starts one server per options, waits until they have formed
// a JetStream cluster with a meta leader, and returns their client URLs.
// (A JetStream API request sent before there is a leader gets no answer at
// all, so without the wait the first one would only time out.)
func startCluster(tb testing.TB, all []*server.Options, repick func([]*server.Options)) []string {
	tb.Helper()
	var urls []string
	var servers []*server.Server
	// A port probed free can be taken by another package's test before its
	// server listens: then this attempt's servers stop, repick gives every
	// node new ports (and a new store), and the cluster starts again.
	for attempt := 1; ; attempt++ {
		var err error
		if servers, urls, err = tryCluster(all); err == nil {
			break
		}
		if attempt == 3 {
			tb.Fatal(err)
		}
		tb.Logf("attempt %d: %v; starting again on new ports", attempt, err)
		repick(all)
	}
	tb.Cleanup(func() { shutdown(servers) })
	natstest.WaitFor(tb, 30*time.Second, func() error {
		leaders, current, routed := 0, 0, 0
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				leaders++
			}
			if s.JetStreamIsCurrent() {
				current++
			}
			if s.NumRoutes() > 0 {
				routed++
			}
		}
		if leaders == 1 && current == len(servers) && routed == len(servers) {
			return nil
		}
		return fmt.Errorf("no JetStream cluster yet: %d meta leader(s), %d of %d servers current, %d routed",
			leaders, current, len(servers), routed)
	})
	return urls
}

// tryCluster starts a server for each of all. If one fails to start or
// to accept connections, it shuts down those it started and says why.
func tryCluster(all []*server.Options) ([]*server.Server, []string, error) {
	var servers []*server.Server
	var urls []string
	for _, o := range all {
		opts := o.Clone()
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			shutdown(servers)
			return nil, nil, fmt.Errorf("%s: %w", opts.ServerName, err)
		}
		go s.Start()
		servers = append(servers, s)
		if !s.ReadyForConnections(10 * time.Second) {
			shutdown(servers)
			return nil, nil, fmt.Errorf("%s did not accept connections on port %d", opts.ServerName, opts.Port)
		}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", opts.Port))
	}
	return servers, urls, nil
}

func shutdown(servers []*server.Server) {
	for _, s := range servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// checkClusterServes runs the deployment's start-up on the cluster: the
// service provision creates the stream, bucket and consumer with its
// replicas as the admin; then each service, as its own user, does its
// part (the command API publishes an event, the projector puts a
// snapshot, the query API looks everything up); nobody gets in
// anonymously; and the system user asks every server for itself, as
// `nats server list` does.
func checkClusterServes(tb testing.TB, urls []string, auth natsx.Credentials, serviceNATS func(service string) natsx.Options) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	connect := func(service string) *natsx.Conn {
		conn, err := natsx.Connect(ctx, serviceNATS(service), quiet)
		if err != nil {
			tb.Fatalf("connect as service %s: %v", service, err)
		}
		tb.Cleanup(func() { conn.NC.Close() })
		return conn
	}
	admin := connect("provision")
	res, err := natsx.Provision(ctx, admin.JS, serviceNATS("provision"), quiet)
	if err != nil {
		tb.Fatalf("provision: %v", err)
	}
	info, err := res.Stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Name != "inkstream" {
		tb.Fatalf("stream %s: replicas %d, cluster %+v; want 3 replicas in cluster inkstream", events.StreamName, info.Config.Replicas, info.Cluster)
	}
	// A write is acknowledged once a quorum of the three replicas has it.
	cmd := connect("command-api-1")
	ack, err := cmd.JS.Publish(ctx, events.SubjectPrefix+".deployments-test.created", []byte(`{}`))
	if err != nil || ack.Stream != events.StreamName {
		tb.Fatalf("publish to the R3 stream as command-api: %v (%+v)", err, ack)
	}
	proj := connect("projector-1")
	kv, err := proj.JS.KeyValue(ctx, natsx.Bucket)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := natsx.NewSnapshots(proj.JS, kv).Put(ctx, readmodel.Snapshot{Article: domain.Article{ID: "deployments-test"}}, 0); err != nil {
		tb.Fatalf("put into the R3 bucket as projector: %v", err)
	}
	query := connect("query-api-1")
	if _, err := natsx.Lookup(ctx, query.JS, serviceNATS("query-api-1"), true, quiet); err != nil {
		tb.Fatalf("look up as query-api: %v", err)
	}
	if nc, err := nats.Connect(strings.Join(urls, ",")); err == nil {
		nc.Close()
		tb.Fatal("an anonymous client connected")
	}

	sysKey, err := nats.NkeyOptionFromSeed(auth.SeedFile(natsx.RoleSys))
	if err != nil {
		tb.Fatal(err)
	}
	sys, err := nats.Connect(strings.Join(urls, ","), sysKey)
	if err != nil {
		tb.Fatalf("connect as the system user: %v", err)
	}
	defer sys.Close()
	inbox := nats.NewInbox()
	sub, err := sys.SubscribeSync(inbox)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sys.PublishRequest("$SYS.REQ.SERVER.PING", inbox, nil); err != nil {
		tb.Fatal(err)
	}
	for i := range urls {
		if _, err := sub.NextMsg(10 * time.Second); err != nil {
			tb.Fatalf("system account: %d of %d servers answered $SYS.REQ.SERVER.PING: %v", i, len(urls), err)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "#") || (t == "" && cur == "") {
			continue
		}
		if before, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), "\\"); ok {
			cur += before + " "
			continue
		}
		lines = append(lines, strings.TrimSpace(cur+l))
		cur = ""
	}
	type stage struct {
		base, name string
		lines      []string
	}
	var stages []stage
	for _, l := range lines {
		fields := strings.Fields(l)
		if len(fields) == 0 {
			continue
		}
		if strings.EqualFold(fields[0], "FROM") {
			st := stage{base: fields[1]}
			if len(fields) >= 4 && strings.EqualFold(fields[2], "AS") {
				st.name = fields[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if !strings.EqualFold(fields[0], "ARG") {
				t.Fatalf("Dockerfile: %q before the first FROM", l)
			}
			continue
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a runtime stage", len(stages))
	}

	// The build stage: the module's Go, static binaries of ./cmd/... .
	build := stages[0]
	goVersion := moduleGoVersion(t)
	if build.base != "golang:"+goVersion && !strings.HasPrefix(build.base, "golang:"+goVersion+"-") && !strings.HasPrefix(build.base, "golang:"+goVersion+".") {
		t.Errorf("build stage FROM %s; go.mod wants Go %s (golang:%s)", build.base, goVersion, goVersion)
	}
	outDir := ""
	for _, l := range build.lines {
		if !strings.Contains(l, "go build") {
			continue
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/..."} {
			if !strings.Contains(l, want) {
				t.Errorf("Dockerfile go build lacks %s: %s", want, l)
			}
		}
		if !regexp.MustCompile(`-ldflags[= ]["']?-s -w["']?`).MatchString(l) {
			t.Errorf(`Dockerfile go build lacks -ldflags "-s -w": %s`, l)
		}
		if m := regexp.MustCompile(`-o\s+(\S+/)\s`).FindStringSubmatch(l); m != nil {
			outDir = m[1]
		}
	}
	if outDir == "" {
		t.Fatal("Dockerfile: no `go build ... -o <dir>/ ./cmd/...` in the first stage")
	}

	// The runtime stage: no shell, no fixed entrypoint, every binary.
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final.base)
	}
	binDir := ""
	var defaultCmd []string
	for _, l := range final.lines {
		fields := strings.Fields(l)
		switch strings.ToUpper(fields[0]) {
		case "ENTRYPOINT":
			t.Errorf("final stage has %q: compose picks the binary with its command", l)
		case "COPY":
			if len(fields) == 4 && fields[1] == "--from="+build.name && fields[2] == outDir {
				binDir = fields[3]
			}
		case "CMD":
			if err := json.Unmarshal([]byte(strings.TrimSpace(l[len("CMD"):])), &defaultCmd); err != nil {
				t.Errorf("CMD is not in exec (JSON) form, which an image without a shell needs: %v", err)
			}
		}
	}
	if binDir == "" {
		t.Fatalf("final stage copies no %s from stage %q", outDir, build.name)
	}
	// The default command, if any, runs a binary of the image with its real flags.
	if len(defaultCmd) > 0 {
		dir, bin := path.Split(defaultCmd[0])
		flags, err := config.FlagNames(bin)
		if err != nil || path.Clean(dir) != path.Clean(binDir) {
			t.Errorf("CMD runs %s, which is not a binary in %s (%v)", defaultCmd[0], binDir, err)
		}
		for _, arg := range defaultCmd[1:] {
			name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if !strings.HasPrefix(arg, "-") || !slices.Contains(flags, name) {
				t.Errorf("CMD argument %q is not a flag of %s", arg, bin)
			}
		}
	}

	// Every command in the compose file is a binary the image holds.
	cmds, err := os.ReadDir(filepath.Join("..", "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var binaries []string
	for _, c := range cmds {
		if c.IsDir() {
			binaries = append(binaries, c.Name())
		}
	}
	for _, p := range processes {
		if !slices.Contains(binaries, p) {
			t.Errorf("cmd/%s is missing", p)
		}
	}
	f := loadCompose(t)
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		if s.Build == nil {
			continue
		}
		cmd := append(words(s.Entrypoint), words(s.Command)...)
		if len(cmd) == 0 {
			t.Errorf("service %s names no binary", name)
			continue
		}
		if dir, bin := path.Split(cmd[0]); path.Clean(dir) != path.Clean(binDir) || !slices.Contains(binaries, bin) {
			t.Errorf("service %s runs %s; the image has %v in %s", name, cmd[0], binaries, binDir)
		}
	}

	// The ignore file next to the Dockerfile must keep what the build needs.
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ignore), "\n") {
		l = strings.Trim(strings.TrimSpace(l), "/")
		for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "pkg", "*", "**"} {
			if l == need {
				t.Errorf("Dockerfile.dockerignore drops %s, which go build ./cmd/... needs", l)
			}
		}
	}
}

func moduleGoVersion(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		tb.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}
