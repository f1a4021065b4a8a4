package projector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/cache"
	"github.com/inkstream/inkstream/pkg/domain"
)

// cached is a snapshot as the projector last wrote or read it, with its KV
// revision. It is a hint: every write is checked by compare-and-set.
type cached struct {
	state domain.State
	seq   uint64
	rev   uint64
	// removed: the bucket holds a deletion or purge marker at rev.
	removed bool
}

// snapshots are the snapshots this projector keeps, within a byte budget.
type snapshots struct {
	c *cache.Cache[cached]
}

func newSnapshots(budget uint64, reg prometheus.Registerer) *snapshots {
	return &snapshots{c: cache.New("projector_snapshots", budget, func(c cached) int { return cache.ArticleBytes(c.state.Article) }, reg)}
}

func (s *snapshots) get(id string) (cached, bool) { return s.c.Get(id) }
func (s *snapshots) put(id string, c cached)      { s.c.Set(id, c) }
func (s *snapshots) forget(id string)             { s.c.Forget(id) }
