package app_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayers keeps the shape of the code: NATS is reached only through the
// adapter (internal/natsx) and the composition root (internal/app), and the
// domain speaks no JSON, which lives in pkg/events and the adapters.
func TestLayers(t *testing.T) {
	t.Run("no NATS behind the ports", func(t *testing.T) {
		deps := goList(t, "{{range .Deps}}{{.}} {{end}}",
			"./internal/commandapi", "./internal/queryapi", "./internal/projector", "./internal/httpx", "./pkg/...")
		for pkg, ds := range deps {
			for _, d := range ds {
				if strings.HasPrefix(d, "github.com/nats-io/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
		// The same question about the adapter finds NATS: the answer above is no accident.
		if ds := goList(t, "{{range .Deps}}{{.}} {{end}}", "./internal/natsx"); !slices.ContainsFunc(ds[module+"/internal/natsx"], func(d string) bool {
			return strings.HasPrefix(d, "github.com/nats-io/")
		}) {
			t.Fatal("go list finds no NATS package among the adapter's dependencies")
		}
	})
	t.Run("no JSON in the domain", func(t *testing.T) {
		imports := goList(t, "{{range .Imports}}{{.}} {{end}}", "./pkg/domain", "./pkg/events")
		isJSON := func(p string) bool {
			return p == "encoding/json" || strings.HasPrefix(p, "github.com/go-json-experiment/")
		}
		if i := slices.IndexFunc(imports[module+"/pkg/domain"], isJSON); i >= 0 {
			t.Errorf("pkg/domain imports %s", imports[module+"/pkg/domain"][i])
		}
		// The codec does: the question is asked right.
		if !slices.ContainsFunc(imports[module+"/pkg/events"], isJSON) {
			t.Fatal("go list finds no JSON package among pkg/events' imports")
		}
	})
}

const module = "github.com/inkstream/inkstream"

// goList runs `go list -f format` on pkgs at the module root and returns,
// for each package, the space-separated list that format prints.
func goList(t *testing.T, format string, pkgs ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}: " + format}, pkgs...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lists := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, ": ")
		lists[pkg] = strings.Fields(list)
	}
	if len(lists) < len(pkgs) {
		t.Fatalf("go list answered for %d packages of %v:\n%s", len(lists), pkgs, out)
	}
	return lists
}
