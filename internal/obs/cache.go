package obs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of an in-process cache, one series each per cache, told apart
// by the label cache (its name: query_articles, command_states,
// projector_snapshots, ...). A cache registers them with NewCache.
const (
	MetricCacheHits         = "inkstream_cache_hits_total"
	MetricCacheMisses       = "inkstream_cache_misses_total"
	MetricCacheEvictions    = "inkstream_cache_evictions_total"
	MetricCacheEvictedBytes = "inkstream_cache_evicted_bytes_total"
	MetricCacheBytes        = "inkstream_cache_bytes"
	MetricCacheMaxBytes     = "inkstream_cache_max_bytes"
	MetricCacheEntries      = "inkstream_cache_entries"
)

// CacheSize is how much a cache holds now.
type CacheSize struct {
	Entries int64
	Bytes   int64 // its own estimate of the bytes its entries hold
}

// Cache counts what one cache does. Its methods are those of otter v2's
// stats.Recorder, so a github.com/maypok86/otter/v2 cache can take it as
// its StatsRecorder; a cache of its own calls them as it goes. A nil
// *Cache counts nothing.
type Cache struct {
	hits, misses, evictions, evictedBytes prometheus.Counter
}

// NewCache registers the metrics of the cache called name on reg. size,
// called at each scrape, tells how many entries and bytes it holds;
// maxBytes is its byte budget (0: it has none, and the series is left out).
func NewCache(reg prometheus.Registerer, name string, maxBytes int64, size func() CacheSize) *Cache {
	labels := prometheus.Labels{"cache": name}
	counter := func(metric, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: metric, Help: help, ConstLabels: labels})
		reg.MustRegister(c)
		return c
	}
	c := &Cache{
		hits:         counter(MetricCacheHits, "Lookups an in-process cache answered."),
		misses:       counter(MetricCacheMisses, "Lookups an in-process cache could not answer."),
		evictions:    counter(MetricCacheEvictions, "Entries an in-process cache dropped to stay within its bounds."),
		evictedBytes: counter(MetricCacheEvictedBytes, "Bytes of the entries an in-process cache dropped to stay within its bounds."),
	}
	gauge := func(metric, help string, v func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metric, Help: help, ConstLabels: labels}, v))
	}
	gauge(MetricCacheEntries, "Entries an in-process cache holds.", func() float64 { return float64(size().Entries) })
	gauge(MetricCacheBytes, "Bytes an in-process cache holds, by its own estimate.", func() float64 { return float64(size().Bytes) })
	if maxBytes > 0 {
		gauge(MetricCacheMaxBytes, "The byte budget of an in-process cache.", func() float64 { return float64(maxBytes) })
	}
	return c
}

// Hit counts one lookup answered.
func (c *Cache) Hit() { c.RecordHits(1) }

// Miss counts one lookup not answered.
func (c *Cache) Miss() { c.RecordMisses(1) }

// Evicted counts one entry of bytes dropped to stay within bounds.
func (c *Cache) Evicted(bytes int) { c.RecordEviction(uint32(min(max(bytes, 0), 1<<32-1))) }

// RecordHits counts n lookups answered.
func (c *Cache) RecordHits(n int) {
	if c != nil {
		c.hits.Add(float64(n))
	}
}

// RecordMisses counts n lookups not answered.
func (c *Cache) RecordMisses(n int) {
	if c != nil {
		c.misses.Add(float64(n))
	}
}

// RecordEviction counts one entry of weight bytes dropped.
func (c *Cache) RecordEviction(weight uint32) {
	if c != nil {
		c.evictions.Inc()
		c.evictedBytes.Add(float64(weight))
	}
}

// RecordLoadSuccess is part of otter's stats.Recorder; loads are not counted.
func (c *Cache) RecordLoadSuccess(time.Duration) {}

// RecordLoadFailure is part of otter's stats.Recorder; loads are not counted.
func (c *Cache) RecordLoadFailure(time.Duration) {}
