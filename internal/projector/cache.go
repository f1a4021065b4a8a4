package projector

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/pkg/domain"
)

// cached is a snapshot as the projector last wrote or read it, with its KV
// revision. It is a hint: every write is checked by compare-and-set.
type cached struct {
	state domain.State
	seq   uint64
	rev   uint64
	size  int // bytes of its encoded snapshot, when known
}

type snapshots struct {
	mu    sync.Mutex
	max   int
	m     map[string]cached
	bytes int64
	stats *obs.Cache
}

func newSnapshots(size int, reg prometheus.Registerer) *snapshots {
	s := &snapshots{max: size, m: make(map[string]cached)}
	s.stats = obs.NewCache(reg, "projector_snapshots", 0, func() obs.CacheSize {
		s.mu.Lock()
		defer s.mu.Unlock()
		return obs.CacheSize{Entries: int64(len(s.m)), Bytes: s.bytes}
	})
	return s
}

func (s *snapshots) get(id string) (cached, bool) {
	s.mu.Lock()
	c, ok := s.m[id]
	s.mu.Unlock()
	if ok {
		s.stats.Hit()
	} else {
		s.stats.Miss()
	}
	return c, ok
}

func (s *snapshots) put(id string, c cached) {
	if s.max == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[id]
	if !ok && len(s.m) >= s.max {
		n := len(s.m)/16 + 1
		for k, e := range s.m {
			delete(s.m, k)
			s.bytes -= int64(e.size)
			s.stats.Evicted(e.size)
			if n--; n == 0 {
				break
			}
		}
	}
	s.bytes += int64(c.size - old.size)
	s.m[id] = c
}

func (s *snapshots) forget(id string) {
	s.mu.Lock()
	if old, ok := s.m[id]; ok {
		delete(s.m, id)
		s.bytes -= int64(old.size)
	}
	s.mu.Unlock()
}
