package cmdtest_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/config"
)

// binaries are the commands of ./cmd, with the prefix of the environment
// variables their flags read.
var binaries = []struct{ name, envPrefix string }{
	{"command-api", config.EnvPrefix},
	{"query-api", config.EnvPrefix},
	{"projector", config.EnvPrefix},
	{"inkstream", config.EnvPrefix},
	{"inkcluster", "INKSTREAM_CLUSTER_"},
	{"inkbench", "INKSTREAM_BENCH_"},
}

// buildAll builds every command of ./cmd into a temporary directory.
func buildAll(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	return dir
}

// runBin runs a built binary and returns its stdout, stderr and exit code.
func runBin(t *testing.T, path string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no INKSTREAM_* of the test's own environment
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", path, args, err)
	}
	return stdout.String(), stderr.String(), 0
}

// flagBlock is one flag in -h: "  -name type" then its indented lines.
var flagBlock = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)[^\n]*\n((?:    \t[^\n]*\n?)*)`)

// TestEveryBinaryHasVersionAndHelp builds every binary and checks that
// -version prints one line from the build information on stdout and exits
// 0, and that -h (of each subcommand too) exits 0 and lists every flag with
// the environment variable it reads.
func TestEveryBinaryHasVersionAndHelp(t *testing.T) {
	dir := buildAll(t)
	for _, b := range binaries {
		t.Run(b.name, func(t *testing.T) {
			path := filepath.Join(dir, b.name)
			stdout, stderr, code := runBin(t, path, "-version")
			line := regexp.MustCompile(`^` + regexp.QuoteMeta(b.name) + ` (\(devel\)|v\S+)( \([^)]*\))? go1\.\d+(\.\d+)?\S* [a-z0-9]+/[a-z0-9]+\n$`)
			if code != 0 || !line.MatchString(stdout) || stderr != "" {
				t.Errorf("-version: exit %d, stdout %q, stderr %q; want exit 0 and one version line", code, stdout, stderr)
			}
			invocations := [][]string{{"-h"}}
			if b.name == "inkstream" {
				invocations = append(invocations, []string{"rebuild", "-h"}, []string{"verify", "-h"})
			}
			for _, args := range invocations {
				_, help, code := runBin(t, path, args...)
				if code != 0 {
					t.Errorf("%v: exit %d, want 0", args, code)
				}
				listed := map[string]string{}
				for _, m := range flagBlock.FindAllStringSubmatch(help, -1) {
					listed[m[1]] = m[2]
				}
				if _, ok := listed["version"]; !ok {
					t.Errorf("%v does not list -version:\n%s", args, help)
				}
				if len(listed) < 3 {
					t.Fatalf("%v lists %d flags:\n%s", args, len(listed), help)
				}
				for name, text := range listed {
					env := "env " + config.EnvNameWith(b.envPrefix, name)
					switch {
					case name == "version" && strings.Contains(text, "env "):
						t.Errorf("%v: -version claims an environment variable: %q", args, text)
					case name != "version" && !strings.Contains(text, env+"\n") && !strings.HasSuffix(text, env) && !strings.Contains(text, env+" "):
						t.Errorf("%v: -%s does not name %s:\n%s", args, name, env, text)
					}
				}
				if b.envPrefix != config.EnvPrefix || len(args) > 1 {
					continue
				}
				// The services' own list of flags, which the deployment tests check the compose file against.
				process := b.name
				names, err := config.FlagNames(process)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					if _, ok := listed[n]; !ok {
						t.Errorf("-h does not list -%s", n)
					}
				}
				if len(listed) != len(names)+1 {
					t.Errorf("-h lists %d flags, the process has %d and -version", len(listed), len(names))
				}
			}
		})
	}
}
