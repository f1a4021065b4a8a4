package commandapi

import (
	"hash/maphash"
	"sync"

	"github.com/inkstream/inkstream/pkg/domain"
)

// aggregate is the command side's view of one article: its state and the
// stream sequence of its last event, the expectation of the next append.
// mu serialises this instance's writes to the article, so they do not race
// each other; JetStream's expected-sequence check catches other instances.
type aggregate struct {
	mu     sync.Mutex
	loaded bool
	state  domain.State
	seq    uint64
}

const shards = 64

// aggregates is a bounded, sharded map of aggregates. When a shard is full
// it forgets arbitrary entries: a forgotten article is loaded again from the
// stream, so eviction costs a read, never correctness.
type aggregates struct {
	seed     maphash.Seed
	perShard int
	shard    [shards]struct {
		mu sync.Mutex
		m  map[string]*aggregate
	}
}

func newAggregates(size int) *aggregates {
	a := &aggregates{seed: maphash.MakeSeed(), perShard: max(size/shards, 1)}
	for i := range a.shard {
		a.shard[i].m = make(map[string]*aggregate)
	}
	return a
}

// get returns the aggregate of id, adding an unloaded one if absent.
func (a *aggregates) get(id string) *aggregate {
	sh := &a.shard[maphash.String(a.seed, id)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if agg, ok := sh.m[id]; ok {
		return agg
	}
	if len(sh.m) >= a.perShard {
		n := len(sh.m)/8 + 1
		for k := range sh.m {
			delete(sh.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	agg := &aggregate{}
	sh.m[id] = agg
	return agg
}

// forget drops id, so the next write loads it from the stream.
func (a *aggregates) forget(id string) {
	sh := &a.shard[maphash.String(a.seed, id)%shards]
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}
