// Package cache is the byte-bounded cache every inkstream role keeps its
// hot data in: a budget of bytes, not of entries, enforced by otter (W-TinyLFU
// admission and eviction), and counted in Prometheus metrics.
package cache

import (
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/pkg/domain"
)

// Cache maps article ids to values of a weight in bytes, up to a budget.
type Cache[V any] struct {
	c     *otter.Cache[string, V]
	stats *stats.Counter
}

// overhead is what an entry costs besides its value's own bytes: the key,
// the node and the hash table's share.
const overhead = 128

// New returns a cache of at most budget bytes (0: it keeps nothing) whose
// values weigh weight(v) bytes. Its metrics carry the label cache=name.
func New[V any](name string, budget uint64, weight func(V) int, reg prometheus.Registerer) *Cache[V] {
	st := stats.NewCounter()
	c := otter.Must(&otter.Options[string, V]{
		MaximumWeight: max(budget, 1),
		Weigher: func(k string, v V) uint32 {
			return uint32(min(len(k)+weight(v)+overhead, 1<<31))
		},
		StatsRecorder: st,
	})
	cc := &Cache[V]{c: c, stats: st}
	labels := prometheus.Labels{"cache": name}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inkstream_cache_bytes", Help: "Bytes the cache holds.", ConstLabels: labels},
			func() float64 { return float64(c.WeightedSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inkstream_cache_budget_bytes", Help: "Bytes the cache may hold.", ConstLabels: labels},
			func() float64 { return float64(budget) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "inkstream_cache_hits_total", Help: "Lookups the cache answered.", ConstLabels: labels},
			func() float64 { return float64(st.Snapshot().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "inkstream_cache_misses_total", Help: "Lookups the cache could not answer.", ConstLabels: labels},
			func() float64 { return float64(st.Snapshot().Misses) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "inkstream_cache_evictions_total", Help: "Entries evicted to keep within the budget.", ConstLabels: labels},
			func() float64 { return float64(st.Snapshot().Evictions) }),
	)
	return cc
}

// Get returns the value of id, counting a hit or a miss.
func (c *Cache[V]) Get(id string) (V, bool) { return c.c.GetIfPresent(id) }

// Set stores v for id; the cache may refuse or evict it to keep its budget.
func (c *Cache[V]) Set(id string, v V) { c.c.Set(id, v) }

// Forget drops id.
func (c *Cache[V]) Forget(id string) { c.c.Invalidate(id) }

// Bytes is the weight the cache holds now.
func (c *Cache[V]) Bytes() uint64 { return c.c.WeightedSize() }

// GetOrAdd returns the value of id, storing mk's first when it has none.
func (c *Cache[V]) GetOrAdd(id string, mk func() V) V {
	if v, ok := c.c.GetIfPresent(id); ok {
		return v
	}
	v, _ := c.c.SetIfAbsent(id, mk())
	return v
}

// ArticleBytes estimates what an article's state weighs in memory.
func ArticleBytes(a domain.Article) int {
	n := len(a.ID) + len(a.Title) + len(a.Slug) + len(a.Content) + len(a.AuthorID) + len(a.Status) + 160
	for _, t := range a.Tags {
		n += len(t) + 16
	}
	return n
}
