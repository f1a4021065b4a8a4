package projector

import (
	"sync"

	"github.com/inkstream/inkstream/pkg/domain"
)

// cached is a snapshot as the projector last wrote or read it, with its KV
// revision. It is a hint: every write is checked by compare-and-set.
type cached struct {
	state domain.State
	seq   uint64
	rev   uint64
}

type snapshots struct {
	mu  sync.Mutex
	max int
	m   map[string]cached
}

func newSnapshots(size int) *snapshots {
	return &snapshots{max: size, m: make(map[string]cached)}
}

func (s *snapshots) get(id string) (cached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	return c, ok
}

func (s *snapshots) put(id string, c cached) {
	if s.max == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok && len(s.m) >= s.max {
		n := len(s.m)/16 + 1
		for k := range s.m {
			delete(s.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	s.m[id] = c
}

func (s *snapshots) forget(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
