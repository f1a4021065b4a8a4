package bench

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestProgressPlainAndBar: to a log that is not a terminal, a step says how
// far it has come in plain lines (every plainEvery, and once at the end);
// on a terminal it draws a bar.
func TestProgressPlainAndBar(t *testing.T) {
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	var w bytes.Buffer
	p := newProgress(&w, logf, "replay: publishing", "events", 1000)
	if p.bar != nil {
		t.Fatal("a bar on a buffer")
	}
	p.set(10)
	p.last = p.last.Add(-plainEvery) // as if plainEvery had passed
	p.set(500)
	p.set(600) // too soon
	p.set(1000)
	p.set(1000) // already ended
	p.end()
	want := []string{"replay: publishing: 500 of 1 000 events (50%)", "replay: publishing: 1 000 of 1 000 events (100%)"}
	if len(lines) != len(want) {
		t.Fatalf("lines %q, want %d", lines, len(want))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) || !strings.Contains(l, "events/s") {
			t.Errorf("line %q, want it to start with %q and give a rate", l, want[i])
		}
	}
	if w.Len() != 0 {
		t.Errorf("plain progress wrote %q to the log writer itself", w.String())
	}

	// The bar, as on a terminal.
	lines = nil
	b := &progress{w: &w, desc: "replay: projecting", unit: "events", total: 100, logf: logf, bar: newBar(&w, "replay: projecting", "events", 100)}
	b.set(40)
	b.set(100)
	b.end()
	if len(lines) != 0 || !strings.Contains(w.String(), "replay: projecting") || !strings.Contains(w.String(), "100/100") {
		t.Errorf("bar wrote %q and lines %q", w.String(), lines)
	}
}
