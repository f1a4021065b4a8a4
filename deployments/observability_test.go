package deployments_test

// The files that watch a deployment: the Prometheus scrape config and alert
// rules (prometheus/), the Grafana provisioning and dashboard (grafana/),
// and the compose services that run them with a NATS exporter. They are
// checked with Debian's promtool, against the compose file, and by running
// a real Prometheus against a real system.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/procs"
	"github.com/inkstream/inkstream/internal/systest"
)

const (
	promConfig     = "prometheus/prometheus.yml"
	promRules      = "prometheus/alerts.yml"
	promRulesTests = "prometheus/alerts_test.yml"
	dashboardFile  = "grafana/dashboards/inkstream.json"
	exporterPort   = 7777 // prometheus-nats-exporter's default
)

// lookBin finds a program of Debian's prometheus package, which `make test`
// installs.
func lookBin(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not installed: `make test` installs Debian's prometheus package (apt-get install prometheus): %v", name, err)
	}
	return p
}

func TestPromtoolAcceptsTheShippedFiles(t *testing.T) {
	promtool := lookBin(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", promConfig},
		{"check", "rules", promRules},
		{"test", "rules", promRulesTests},
	} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type promFile struct {
	Global        map[string]any `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string `yaml:"job_name"`
	MetricsPath   string `yaml:"metrics_path,omitempty"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

func loadProm(tb testing.TB) promFile {
	tb.Helper()
	b, err := os.ReadFile(promConfig)
	if err != nil {
		tb.Fatal(err)
	}
	var f promFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("%s: %v", promConfig, err)
	}
	return f
}

// targets maps each job of the scrape config to its targets.
func (f promFile) targets() map[string][]string {
	out := map[string][]string{}
	for _, sc := range f.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			out[sc.JobName] = append(out[sc.JobName], st.Targets...)
		}
	}
	return out
}

// TestPrometheusScrapesEveryProcess checks the scrape config against the
// compose file: every inkstream service is a target of the job named for
// its process, at the port it listens on; every NATS node has an exporter
// that reads its monitoring port and is a target of job nats; nothing else
// is scraped.
func TestPrometheusScrapesEveryProcess(t *testing.T) {
	f, prom := loadCompose(t), loadProm(t)
	jobs := prom.targets()
	want := map[string][]string{}
	exporters := map[string]string{} // NATS node → its exporter service
	for _, name := range sortedNames(f) {
		s := f.Services[name]
		switch p := process(t, name, s); {
		case p == "command-api" || p == "query-api" || p == "projector":
			listen := env(t, name, s)[config.EnvName("listen")]
			_, port, err := net.SplitHostPort(listen)
			if err != nil {
				t.Errorf("service %s: listen %q: %v", name, listen, err)
				continue
			}
			want[p] = append(want[p], name+":"+port)
		case p == "nats-exporter":
			cmd := words(s.Command)
			u, err := url.Parse(cmd[len(cmd)-1])
			if err != nil || u.Scheme != "http" {
				t.Errorf("exporter %s: its last argument %q is not the URL of a NATS server's monitoring port", name, cmd[len(cmd)-1])
				continue
			}
			node := u.Hostname()
			if _, ok := f.Services[node]; !ok || !isNATS(f.Services[node]) {
				t.Errorf("exporter %s reads %s, which is no NATS service", name, u)
				continue
			}
			if opts := natsOptions(t, f, node, composeAuth(t, f, "nats://127.0.0.1:4222")); u.Port() != strconv.Itoa(opts.HTTPPort) {
				t.Errorf("exporter %s reads port %s of %s, whose monitoring port is %d", name, u.Port(), node, opts.HTTPPort)
			}
			if !slices.ContainsFunc(cmd, func(w string) bool { return w == "-varz" }) {
				t.Errorf("exporter %s does not export -varz, which the dashboard and alerts use", name)
			}
			exporters[node] = name
			want["nats"] = append(want["nats"], fmt.Sprintf("%s:%d", name, exporterPort))
		}
	}
	for _, node := range natsServices(f) {
		if exporters[node] == "" {
			t.Errorf("NATS node %s has no exporter", node)
		}
	}
	for job, targets := range want {
		slices.Sort(targets)
		got := slices.Clone(jobs[job])
		slices.Sort(got)
		if !slices.Equal(got, targets) {
			t.Errorf("job %s scrapes %v, want %v", job, got, targets)
		}
	}
	for job := range jobs {
		if _, ok := want[job]; !ok {
			t.Errorf("job %s scrapes %v, which no compose service is", job, jobs[job])
		}
	}
	for _, rf := range prom.RuleFiles {
		if _, err := os.Stat(filepath.Join(filepath.Dir(promConfig), rf)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
}

// TestComposeRunsPrometheusAndGrafanaProvisioned checks that the compose
// file runs Prometheus on the shipped config and rules and Grafana with its
// data source pointing at that Prometheus and the dashboard provisioned.
func TestComposeRunsPrometheusAndGrafanaProvisioned(t *testing.T) {
	f := loadCompose(t)
	var promSvc, grafana string
	for _, name := range sortedNames(f) {
		switch tool(f.Services[name]) {
		case "prometheus":
			promSvc = name
		case "grafana":
			grafana = name
		}
	}
	if promSvc == "" || grafana == "" {
		t.Fatalf("compose runs Prometheus %q and Grafana %q; want both", promSvc, grafana)
	}
	// Prometheus reads the shipped prometheus.yml, with alerts.yml beside it.
	mountedAt := func(service, dir string) string {
		for _, m := range mounts(t, service, f.Services[service]) {
			if m.bind && filepath.Clean(m.source) == filepath.Clean(dir) {
				return m.target
			}
		}
		t.Fatalf("service %s does not mount ./%s", service, dir)
		return ""
	}
	promDir := mountedAt(promSvc, "prometheus")
	if cmd := words(f.Services[promSvc].Command); !slices.Contains(cmd, "--config.file="+promDir+"/prometheus.yml") {
		t.Errorf("prometheus runs %v, not --config.file=%s/prometheus.yml", cmd, promDir)
	}
	// Grafana's data source is that Prometheus, its dashboards the shipped ones.
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://"+promSvc+":9090" {
		t.Errorf("Grafana's data sources %+v; want one of type prometheus at http://%s:9090", ds.Datasources, promSvc)
	}
	var dash struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/inkstream.yml", &dash)
	provisioning, dashboards := mountedAt(grafana, "grafana/provisioning"), mountedAt(grafana, "grafana/dashboards")
	if provisioning != "/etc/grafana/provisioning" {
		t.Errorf("grafana mounts its provisioning at %s, not /etc/grafana/provisioning", provisioning)
	}
	if len(dash.Providers) != 1 || dash.Providers[0].Options.Path != dashboards {
		t.Errorf("Grafana's dashboard provider %+v does not read %s, where ./grafana/dashboards is mounted", dash.Providers, dashboards)
	}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			if tg.Datasource.UID != ds.Datasources[0].UID {
				t.Errorf("panel %q queries data source %q, not %q", p.Title, tg.Datasource.UID, ds.Datasources[0].UID)
			}
		}
	}
}

func readYAML(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

// dashboardPanels reads every panel of the dashboard, those inside rows too.
func dashboardPanels(tb testing.TB) []panel {
	tb.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		tb.Fatal(err)
	}
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queries are the PromQL expressions of the dashboard's panels and of the
// alert rules, with Grafana's interval variables as Prometheus reads them.
func queries(tb testing.TB) map[string]string {
	tb.Helper()
	out := map[string]string{}
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")
	for _, p := range dashboardPanels(tb) {
		for i, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				tb.Errorf("panel %q target %d has no query", p.Title, i)
				continue
			}
			out[fmt.Sprintf("panel %q #%d", p.Title, i)] = grafanaVars.Replace(tg.Expr)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(tb, promRules, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	if len(out) < 20 {
		tb.Fatalf("only %d queries in the dashboard and the alerts", len(out))
	}
	return out
}

// promQLNames returns the metric names a PromQL expression selects: its
// identifiers that are not functions (followed by "("), aggregations,
// keywords, label names (inside braces, or the lists of by, without, on,
// ignoring, group_left and group_right), numbers, durations or strings.
func promQLNames(expr string) []string {
	var names []string
	keywords := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true, "atan2": true,
		// Aggregations, which may stand before their by or without.
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	lists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	skipTo := func(i int, end byte) int {
		for i < len(expr) && expr[i] != end {
			if expr[i] == '"' || expr[i] == '\'' || expr[i] == '`' {
				q := expr[i]
				for i++; i < len(expr) && expr[i] != q; i++ {
					if expr[i] == '\\' {
						i++
					}
				}
			}
			i++
		}
		return i
	}
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '{':
			i = skipTo(i, '}') + 1
		case c == '[':
			i = skipTo(i, ']') + 1
		case c == '"' || c == '\'' || c == '`':
			i = skipTo(i+1, c) + 1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.') {
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			switch {
			case lists[strings.ToLower(word)] && k < len(expr) && expr[k] == '(':
				j = skipTo(k, ')') + 1
			case keywords[strings.ToLower(word)]:
			case k < len(expr) && expr[k] == '(':
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

func TestPromQLNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (job, route) (rate(inkstream_http_requests_total{status=~"5.."}[1m])) / sum by (job) (rate(inkstream_http_requests_total[1m]))`: "inkstream_http_requests_total inkstream_http_requests_total",
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) > 1e3 and on (x) b offset 5m`:                                               "a_bucket b",
		`count(gnatsd_varz_connections{job="nats"}) < 2 or absent(up{job="projector"} == 1)`:                                                    "gnatsd_varz_connections up",
		`max(deriv(lag[5m])) > 0 unless ignoring(instance) group_left(job) c`:                                                                   "lag c",
	} {
		if got := strings.Join(promQLNames(expr), " "); got != want {
			t.Errorf("promQLNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestRealPrometheusScrapesTheSystem runs the whole system and a real
// Prometheus (Debian's) on the shipped scrape config with the jobs'
// targets replaced by the test's ports (the nats job left out: no exporter
// runs here) and the shipped alert rules. It waits for the scrapes, reads
// an inkstream metric and the read model's lag, rising while no projector
// runs, through Prometheus' HTTP API, and sees every alert rule evaluate.
// Then every query of the dashboard and the alert rules must run on that
// Prometheus, and every metric it names must be one the processes export
// (Prometheus' list of the names it scraped), or, for the NATS exporter's
// gnatsd_varz_<field>, a numeric field of a real nats-server's /varz, the
// document the exporter turns into those metrics.
func TestRealPrometheusScrapesTheSystem(t *testing.T) {
	prometheus := lookBin(t, "prometheus")
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Port: -1, StoreDir: t.TempDir(), NoLog: true, MonitorPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	s := systest.Start(t, ns.ClientURL(), 1, 1)
	addrs := map[string]string{"command-api": s.CommandAPI.Addr, "query-api": s.QueryAPI.Addr, "projector": s.Projectors[0].Addr}

	// The shipped config, pointed at this system, scraping every second.
	prom := loadProm(t)
	var jobs []scrapeConfig
	for _, sc := range prom.ScrapeConfigs {
		if addr, ok := addrs[sc.JobName]; ok {
			sc.StaticConfigs = sc.StaticConfigs[:1]
			sc.StaticConfigs[0].Targets = []string{addr}
			jobs = append(jobs, sc)
		}
	}
	if len(jobs) != len(addrs) {
		t.Fatalf("the scrape config has jobs %v, want one each for %v", prom.targets(), addrs)
	}
	rules, err := filepath.Abs(promRules)
	if err != nil {
		t.Fatal(err)
	}
	prom.ScrapeConfigs, prom.RuleFiles = jobs, []string{rules}
	prom.Global = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
	dir := t.TempDir()
	cfg, err := yaml.Marshal(prom)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	api := startPrometheus(t, prometheus, dir)

	for i := range 10 {
		s.Create(systest.Body(i))
	}
	waitQuery(t, api, `up`, func(r promResult) error {
		up := map[string]float64{}
		for _, v := range r {
			up[v.Metric["job"]] = v.value(t)
		}
		for job := range addrs {
			if up[job] != 1 {
				return fmt.Errorf("up %v", up)
			}
		}
		return nil
	})
	waitQuery(t, api, `sum(inkstream_http_requests_total{job="command-api", route="/api/articles", method="POST", status="201"})`, func(r promResult) error {
		if len(r) != 1 || r[0].value(t) < 10 {
			return fmt.Errorf("POSTs counted: %v", r)
		}
		return nil
	})
	for _, job := range []string{"query-api", "projector"} {
		waitQuery(t, api, `inkstream_projector_lag_events{job="`+job+`"}`, func(r promResult) error {
			if len(r) != 1 || r[0].value(t) != 0 {
				return fmt.Errorf("lag %v", r)
			}
			return nil
		})
	}
	// No projector: the query API's lag, as Prometheus has it, rises.
	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s.Create(systest.Body(100 + i))
	}
	waitQuery(t, api, `max(inkstream_projector_lag_events{job="query-api"})`, func(r promResult) error {
		if len(r) != 1 || r[0].value(t) < 20 {
			return fmt.Errorf("lag %v", r)
		}
		return nil
	})
	waitRules(t, api)

	// Every query runs, and names metrics that exist.
	var names []string
	getJSON(t, api+"/api/v1/label/__name__/values", &names)
	exported := map[string]bool{}
	for _, n := range names {
		exported[n] = true
	}
	varz := varzFields(t, "http://"+ns.MonitorAddr().String()+"/varz")
	for where, q := range queries(t) {
		var res apiStatus
		getJSON(t, api+"/api/v1/query?query="+url.QueryEscape(q), &res)
		if res.Status != "success" {
			t.Errorf("%s: Prometheus refuses %q: %s", where, q, res.Error)
		}
		for _, n := range promQLNames(q) {
			if field, ok := strings.CutPrefix(n, "gnatsd_varz_"); ok {
				if !varz[field] {
					t.Errorf("%s names %s, but a nats-server's /varz has no numeric field %q", where, n, field)
				}
				continue
			}
			if !exported[n] {
				t.Errorf("%s names %s, which no process exports", where, n)
			}
		}
	}
}

// startPrometheus runs prometheus on the config in dir and returns the
// base URL of its HTTP API once it is ready.
func startPrometheus(tb testing.TB, bin, dir string) string {
	tb.Helper()
	g := &procs.Group{Dir: dir}
	tb.Cleanup(func() { g.StopAll(10*time.Second, nil) })
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		p, err := g.Start("prometheus", bin, []string{
			"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--log.level=warn",
		}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		err = procs.WaitHTTP(tb.Context(), p, "http://"+addr+"/-/ready", 100*time.Millisecond, time.Minute)
		if err == nil {
			return "http://" + addr
		}
		if attempt < 3 && p.Exited() && strings.Contains(p.Tail(20), "address already in use") {
			continue
		}
		tb.Fatalf("prometheus: %v\n%s", err, p.Tail(30))
	}
}

// promResult is the vector of an instant query.
type promResult []promSample

// promSample is one element of a vector: labels and [time, "value"].
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (r promResult) String() string { b, _ := json.Marshal(r); return string(b) }

// value is the sample's value.
func (v promSample) value(tb testing.TB) float64 {
	tb.Helper()
	s, _ := v.Value[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		tb.Fatalf("sample %v: %v", v.Value, err)
	}
	return f
}

// apiStatus, given to getJSON, takes the status of an answer, not its data.
type apiStatus struct{ Status, Error string }

// getJSON reads the data of a Prometheus API answer into data; an answer
// that is not a success fails the test, unless data is an *apiStatus.
func getJSON(tb testing.TB, u string, data any) {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		tb.Fatalf("GET %s: %v: %s", u, err, b)
	}
	if st, ok := data.(*apiStatus); ok {
		st.Status, st.Error = env.Status, env.Error
		return
	}
	if env.Status != "success" {
		tb.Fatalf("GET %s: %s %s", u, env.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		tb.Fatalf("GET %s: %v: %s", u, err, env.Data)
	}
}

// waitQuery runs an instant query until check accepts its vector.
func waitQuery(tb testing.TB, api, q string, check func(promResult) error) {
	tb.Helper()
	natstest.WaitFor(tb, 30*time.Second, func() error {
		var res struct {
			ResultType string     `json:"resultType"`
			Result     promResult `json:"result"`
		}
		getJSON(tb, api+"/api/v1/query?query="+url.QueryEscape(q), &res)
		if err := check(res.Result); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	})
}

// waitRules waits until every alert rule has been evaluated, and fails a
// rule that Prometheus could not evaluate.
func waitRules(tb testing.TB, api string) {
	tb.Helper()
	natstest.WaitFor(tb, 30*time.Second, func() error {
		var res struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
					LastEvaluation          time.Time
				} `json:"rules"`
			} `json:"groups"`
		}
		getJSON(tb, api+"/api/v1/rules", &res)
		n := 0
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				if r.LastEvaluation.Year() < 2000 {
					return fmt.Errorf("rule %s not evaluated yet", r.Name)
				}
				if r.Health != "ok" {
					tb.Fatalf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
				}
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("no rules loaded")
		}
		return nil
	})
}

// varzFields are the numeric top-level fields of a nats-server's /varz.
func varzFields(tb testing.TB, u string) map[string]bool {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var varz map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		tb.Fatalf("%s: %v", u, err)
	}
	out := map[string]bool{}
	for k, v := range varz {
		if _, ok := v.(float64); ok {
			out[k] = true
		}
	}
	return out
}
