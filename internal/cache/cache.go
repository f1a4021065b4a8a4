// Package cache is the byte-bounded cache every inkstream role keeps its
// hot data in: a budget of bytes, not of entries, enforced by otter (W-TinyLFU
// admission and eviction), and counted in Prometheus metrics.
package cache

import (
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/pkg/domain"
)

// Cache maps article ids to values of a weight in bytes, up to a budget.
type Cache[V any] struct {
	c    *otter.Cache[string, V]
	none bool // a budget of 0: nothing is stored
}

// overhead is what an entry costs besides its value's own bytes: the key,
// the node and the hash table's share.
const overhead = 128

// New returns a cache of at most budget bytes (0: it keeps nothing) whose
// values weigh weight(v) bytes. Its metrics (obs.NewCache) carry the label
// cache=name; with a nil reg it counts nothing (a cache of one client's).
func New[V any](name string, budget uint64, weight func(V) int, reg prometheus.Registerer) *Cache[V] {
	cc := &Cache[V]{none: budget == 0}
	opts := &otter.Options[string, V]{
		MaximumWeight: max(budget, 1),
		Weigher: func(k string, v V) uint32 {
			return uint32(min(len(k)+weight(v)+overhead, 1<<31))
		},
	}
	if reg != nil {
		opts.StatsRecorder = obs.NewCache(reg, name, int64(budget), func() obs.CacheSize {
			return obs.CacheSize{Entries: int64(cc.c.EstimatedSize()), Bytes: int64(cc.c.WeightedSize())}
		})
	}
	cc.c = otter.Must(opts)
	return cc
}

// Get returns the value of id, counting a hit or a miss.
func (c *Cache[V]) Get(id string) (V, bool) { return c.c.GetIfPresent(id) }

// Set stores v for id; the cache may refuse or evict it to keep its budget.
func (c *Cache[V]) Set(id string, v V) {
	if !c.none {
		c.c.Set(id, v)
	}
}

// SetUnless stores v for id unless the value it holds already wins over v
// (wins(old) is true): a later version never gives way to an earlier one.
func (c *Cache[V]) SetUnless(id string, v V, wins func(old V) bool) {
	if c.none {
		return
	}
	c.c.Compute(id, func(old V, found bool) (V, otter.ComputeOp) {
		if found && wins(old) {
			return old, otter.CancelOp
		}
		return v, otter.WriteOp
	})
}

// Forget drops id.
func (c *Cache[V]) Forget(id string) { c.c.Invalidate(id) }

// Bytes is the weight the cache holds now.
func (c *Cache[V]) Bytes() uint64 { return c.c.WeightedSize() }

// GetOrAdd returns the value of id, storing mk's first when it has none.
func (c *Cache[V]) GetOrAdd(id string, mk func() V) V {
	if v, ok := c.c.GetIfPresent(id); ok {
		return v
	}
	if c.none {
		return mk()
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
