package procs_test

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/procs"
)

// TestMain lets the test binary play the child processes.
func TestMain(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	switch os.Getenv("PROCS_TEST_CHILD") {
	case "stubborn": // ignores SIGTERM
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("ready")
		for range sigs {
		}
	case "clean": // exits 0 on SIGTERM
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Println("ready")
		<-sigs
		os.Exit(0)
	case "failed":
		os.Exit(3)
	case "busy": // spends CPU and memory, then exits 0
		b := make([]byte, 64<<20)
		for i := range b {
			b[i] = byte(i)
		}
		for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		}
		os.Exit(int(b[1]) - 1)
	}
	os.Exit(m.Run())
}

func TestStop(t *testing.T) {
	g := &procs.Group{Dir: t.TempDir()}
	start := func(name, kind string) *procs.Proc {
		t.Helper()
		p, err := g.Start(name, os.Args[0], nil, []string{"PROCS_TEST_CHILD=" + kind})
		if err != nil {
			t.Fatal(err)
		}
		if kind != "failed" {
			err := procs.Poll(t.Context(), p, name+" ready", 10*time.Millisecond, time.Minute, func() (bool, error) {
				b, err := os.ReadFile(p.Log)
				return bytes.Contains(b, []byte("ready")), err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	if err := start("stubborn", "stubborn").Stop(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not stop within 100ms of SIGTERM; killed it") {
		t.Errorf("stubborn: %v", err)
	}
	failed := start("failed", "failed")
	<-failed.Done()
	if err := failed.Stop(time.Minute); err == nil || err.Error() != "had exited by itself: exit status 3" {
		t.Errorf("failed: %v", err)
	}
	start("clean-1", "clean")
	start("clean-2", "clean")
	var order []string
	g.StopAll(time.Minute, func(p *procs.Proc, err error) {
		order = append(order, fmt.Sprintf("%s %v", p.Name, err))
	})
	// The ones stopped before are reported again as stopped, without error.
	if want := []string{"clean-2 <nil>", "clean-1 <nil>", "failed <nil>", "stubborn <nil>"}; !slices.Equal(order, want) {
		t.Errorf("StopAll reported %q, want %q", order, want)
	}
}

// TestUsage checks the CPU time and peak RSS of an exited process: a child
// that spins for 200 ms and touches 64 MiB.
func TestUsage(t *testing.T) {
	g := &procs.Group{Dir: t.TempDir()}
	p, err := g.Start("busy", os.Args[0], nil, []string{"PROCS_TEST_CHILD=busy"})
	if err != nil {
		t.Fatal(err)
	}
	if cpu, _ := p.Usage(); cpu != 0 && !p.Exited() {
		t.Errorf("Usage before the exit: %s", cpu)
	}
	<-p.Done()
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	cpu, rss := p.Usage()
	if cpu < 150*time.Millisecond || rss < 64<<10 {
		t.Errorf("Usage: %s of CPU, %d KiB peak RSS; want at least 150ms and 64 MiB", cpu, rss)
	}
}
