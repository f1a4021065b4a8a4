package queryapi

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/btree"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// entry is one article in the index: what lists, filters, visibility and
// conditional reads need, without its content. The article's JSON is in
// the byte-bounded body cache, or read when needed.
type entry struct {
	id        string
	etag      string
	version   int
	seq       uint64
	deleted   bool
	title     string
	slug      string
	authorID  string
	status    domain.Status
	tags      []string
	createdAt time.Time
	updatedAt time.Time
}

func newEntry(x readmodel.Index) *entry {
	return &entry{
		id: x.ID, etag: `"` + strconv.Itoa(x.Version) + `"`, version: x.Version, seq: x.Seq, deleted: x.Deleted,
		title: x.Title, slug: x.Slug, authorID: x.AuthorID, status: x.Status, tags: x.Tags, createdAt: x.CreatedAt, updatedAt: x.UpdatedAt,
	}
}

// visibleTo reports whether the reader of c may see the article: a
// published one costs one comparison, and anonymous readers pay for no
// token.
func (e *entry) visibleTo(c *fiber.Ctx) bool {
	return e.status == domain.StatusPublished || domain.Visible(httpx.PrincipalOf(c), e.status, e.authorID)
}

func (e *entry) hasTag(t string) bool {
	for _, x := range e.tags {
		if x == t {
			return true
		}
	}
	return false
}

// sortKey is one of the orders a list can have.
type sortKey int

const (
	byCreated sortKey = iota
	byUpdated
	byTitle
	nSortKeys
)

func lessBy(k sortKey) btree.LessFunc[*entry] {
	return func(a, b *entry) bool {
		switch k {
		case byCreated:
			if !a.createdAt.Equal(b.createdAt) {
				return a.createdAt.Before(b.createdAt)
			}
		case byUpdated:
			if !a.updatedAt.Equal(b.updatedAt) {
				return a.updatedAt.Before(b.updatedAt)
			}
		case byTitle:
			if c := strings.Compare(a.title, b.title); c != 0 {
				return c < 0
			}
		}
		return a.id < b.id
	}
}

// view is the in-process index of the read model: every article by id, and
// ordered indexes of the live ones for lists. It is fed by the KV watcher
// or by the fold of the stream, and by reads that went to KV or the stream.
type view struct {
	mu      sync.RWMutex
	byID    map[string]*entry
	indexes [nSortKeys]*btree.BTreeG[*entry]
	// kvRev is the highest KV revision the watcher has applied.
	kvRev uint64
	// maxSeq is the highest stream sequence of a state the view holds.
	maxSeq uint64
	// folded is, when the view folds the stream, the sequence up to which
	// it has folded every event of it (0 otherwise).
	folded uint64
	// changed is closed and replaced whenever the view changes.
	changed chan struct{}
}

func newView() *view {
	v := &view{byID: make(map[string]*entry), changed: make(chan struct{})}
	for k := range v.indexes {
		v.indexes[k] = btree.NewG(32, lessBy(sortKey(k)))
	}
	return v
}

func (v *view) get(id string) *entry {
	v.mu.RLock()
	e := v.byID[id]
	v.mu.RUnlock()
	return e
}

// put stores e unless the view already holds a later state of the article,
// and returns the entry it holds now (e, or the later one).
// rev is the KV revision it came from (0: not from the watcher).
func (v *view) put(e *entry, rev uint64) *entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev > v.kvRev {
		v.kvRev = rev
	}
	kept := v.store(e)
	v.notify()
	return kept
}

// fold stores e (when not nil) as put does, and records that the view has
// folded every event of the stream up to seq.
func (v *view) fold(e *entry, seq uint64) *entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	kept := e
	if e != nil {
		kept = v.store(e)
	}
	v.folded = max(v.folded, seq)
	v.notify()
	return kept
}

// store is put without the lock and the notification.
func (v *view) store(e *entry) *entry {
	v.maxSeq = max(v.maxSeq, e.seq)
	if old := v.byID[e.id]; old != nil {
		if old.seq > e.seq {
			return old
		}
		v.unindex(old)
	}
	v.byID[e.id] = e
	if !e.deleted {
		for _, ix := range v.indexes {
			ix.ReplaceOrInsert(e)
		}
	}
	return e
}

// remove forgets an article whose snapshot was deleted or purged from KV.
func (v *view) remove(id string, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev > v.kvRev {
		v.kvRev = rev
	}
	if old := v.byID[id]; old != nil {
		v.unindex(old)
		delete(v.byID, id)
	}
	v.notify()
}

func (v *view) unindex(e *entry) {
	if e.deleted {
		return
	}
	for _, ix := range v.indexes {
		ix.Delete(e)
	}
}

func (v *view) notify() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// revision returns the highest KV revision applied and a channel closed at
// the next change.
func (v *view) revision() (uint64, <-chan struct{}) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.kvRev, v.changed
}

// seen is the highest stream sequence of a state the view holds (or, when
// it folds the stream, the sequence it has folded up to): a page rendered
// from it shows (about) every event up to it, and its live updates resume
// after it.
func (v *view) seen() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return max(v.maxSeq, v.folded)
}

// position returns the sequence up to which the view has folded the
// stream, and a channel closed at the next change.
func (v *view) position() (uint64, <-chan struct{}) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.folded, v.changed
}

// reaches waits until the view has folded the stream up to seq, and
// reports whether it has before ctx ended.
func (v *view) reaches(ctx context.Context, seq uint64) bool {
	for {
		pos, changed := v.position()
		if pos >= seq {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// live counts the articles that are not deleted.
func (v *view) live() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.indexes[0].Len()
}

// filter is what a list asks for, and who asks: a list holds only what
// the reader may see.
type filter struct {
	authorID, tag, slug string
	status              domain.Status
	reader              domain.Principal
}

func (f filter) match(e *entry) bool {
	return (f.authorID == "" || e.authorID == f.authorID) &&
		(f.slug == "" || e.slug == f.slug) &&
		(f.status == "" || e.status == f.status) &&
		(f.tag == "" || e.hasTag(f.tag)) &&
		(e.status == domain.StatusPublished || domain.Visible(f.reader, e.status, e.authorID))
}

// page returns up to limit entries in order k (descending if desc), after
// the pivot (exclusive) when it is not nil, and whether more follow.
func (v *view) page(k sortKey, desc bool, pivot *entry, f filter, limit int) ([]*entry, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*entry, 0, limit)
	more := false
	visit := func(e *entry) bool {
		if pivot != nil && e.id == pivot.id {
			return true
		}
		if !f.match(e) {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, e)
		return true
	}
	ix := v.indexes[k]
	switch {
	case pivot == nil && desc:
		ix.Descend(visit)
	case pivot == nil:
		ix.Ascend(visit)
	case desc:
		ix.DescendLessOrEqual(pivot, visit)
	default:
		ix.AscendGreaterOrEqual(pivot, visit)
	}
	return out, more
}
