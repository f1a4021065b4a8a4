package cache_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/inkstream/inkstream/internal/cache"
)

func weight(s string) int { return len(s) }

// A later value never gives way to an earlier one with SetUnless.
func TestSetUnlessKeepsTheWinner(t *testing.T) {
	c := cache.New("t", 1<<20, weight, nil)
	later := func(v string) func(string) bool { return func(old string) bool { return old > v } }
	c.SetUnless("a", "v2", later("v2"))
	c.SetUnless("a", "v1", later("v1"))
	if v, _ := c.Get("a"); v != "v2" {
		t.Fatalf("after v2 then v1: %q, want v2", v)
	}
	c.SetUnless("a", "v3", later("v3"))
	if v, _ := c.Get("a"); v != "v3" {
		t.Fatalf("after v3: %q, want v3", v)
	}
}

// The cache keeps within its byte budget and counts what it does on reg.
func TestBudgetAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := cache.New("t", 64<<10, weight, reg)
	big := string(make([]byte, 1<<10))
	for i := range 1000 {
		c.Set(string(rune('a'+i%26))+string(rune(i)), big)
	}
	c.Get("nothing")
	if b := c.Bytes(); b > 64<<10 {
		t.Fatalf("holds %d bytes, over its budget of %d", b, 64<<10)
	}
	n, err := testutil.GatherAndCount(reg, "inkstream_cache_misses_total", "inkstream_cache_max_bytes")
	if err != nil || n != 2 {
		t.Fatalf("metrics: %d series, %v", n, err)
	}
}

// Budget 0 keeps nothing.
func TestZeroBudgetKeepsNothing(t *testing.T) {
	c := cache.New("t", 0, weight, nil)
	c.Set("a", "value")
	if _, ok := c.Get("a"); ok {
		t.Fatal("a cache of 0 bytes kept a value")
	}
}
