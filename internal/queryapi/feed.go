package queryapi

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Changes is the event log as the live feed reads it.
type Changes interface {
	// LastSeq is the log's last stream sequence (0: empty).
	// Errors: domain.ErrUnavailable.
	LastSeq(ctx context.Context) (uint64, error)
	// Follow hands every message of the log from stream sequence from on
	// to each, in order, then every new one as it arrives, until ctx ends
	// (nil) or each returns an error (returned). Errors:
	// domain.ErrUnavailable, or each's.
	Follow(ctx context.Context, from uint64, each func(events.Message) error) error
}

// FeedOptions bound the live feed.
type FeedOptions struct {
	MaxClients int           // clients at once (503 above)
	Heartbeat  time.Duration // a comment line this often
	Queue      int           // frames queued for a client before it is dropped
	CacheBytes int           // budget of the article states the feed keeps
}

// The feed's fixed settings.
const (
	// feedWriteTimeout is how long a write to a client may take before the
	// client is dropped as gone or too slow.
	feedWriteTimeout = 30 * time.Second
	// catchUpCacheBytes is the budget of the states one client's catch-up
	// keeps besides the shared ones.
	catchUpCacheBytes = 1 << 20
)

// errJoined ends a client's catch-up: it has met the hub.
var errJoined = errors.New("caught up")

// feed serves GET /api/changes. One hub per process follows the log from
// its end and hands each event's frame to every client that may see it,
// without ever waiting for one: each client has a bounded queue, and a
// client whose queue is full is dropped (it resumes with Last-Event-ID).
// A client that resumes from an earlier sequence first catches up on a
// reader of its own, from the log, and joins the hub once it has reached
// the hub's position. Sequences are strictly increasing, so a client never
// gets an event twice and, from where it starts, misses none.
//
// When the view folds the stream, the hub is the view's source too: it is
// pinned (it runs from the service's start, with or without clients, and
// after a failure starts again where it stopped), and it hands each
// message's change to the view before any client gets it, so that a client
// that sees an event can read its article at that version.
type feed struct {
	src    Changes
	log    EventLog
	opts   FeedOptions
	shared *states

	pinned bool
	// view folds every message of the log, in order, into the view, before
	// any client gets it. It returns the message's change when it knows
	// it (settled; nil: the message is no valid next event), else settled
	// is false and the hub's folder works the change out for the clients.
	// fo is the hub's folder, for what the view cannot fold itself.
	view func(ctx context.Context, m events.Message, fo *folder) (c *change, settled bool, err error)

	clients atomic.Int64
	ctx     context.Context // ends when the server stops
	stop    context.CancelFunc

	mu      sync.Mutex
	all     map[*subscriber]struct{} // every client
	subs    map[*subscriber]struct{} // clients the hub serves
	hub     context.CancelFunc       // nil while the hub does not run
	hubGen  uint64
	last    uint64        // the hub's position: it has handled every message up to it
	lastNow atomic.Uint64 // last, read without the lock
}

// subscriber is one client of the feed.
type subscriber struct {
	reader   domain.Principal
	authorID string
	tag      string
	queue    chan []byte
	dropped  chan struct{}
	dropOnce sync.Once
	// pos is the sequence up to which the client has been handed (or
	// spared) every event: its catch-up's until it joins, then the hub's,
	// under feed.mu.
	pos    uint64
	cancel context.CancelFunc // its catch-up
	conn   net.Conn           // its connection
}

// drop ends the client's stream at once, also when its writer is stuck
// writing to a client that does not read.
func (s *subscriber) drop() {
	s.dropOnce.Do(func() {
		close(s.dropped)
		if s.conn != nil {
			_ = s.conn.SetWriteDeadline(time.Now())
		}
	})
}

func newFeed(src Changes, log EventLog, opts FeedOptions, reg prometheus.Registerer) *feed {
	ctx, stop := context.WithCancel(context.Background())
	f := &feed{src: src, log: log, opts: opts, shared: newStates("feed_states", uint64(opts.CacheBytes), reg), ctx: ctx, stop: stop,
		all: map[*subscriber]struct{}{}, subs: map[*subscriber]struct{}{}}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_feed_clients", Help: "Clients of the live change feed (GET /api/changes) connected now.",
	}, func() float64 { return float64(f.clients.Load()) }))
	return f
}

// close ends every client's stream and the hub: the server is stopping.
// A writer stuck on a client that does not read is unstuck too.
func (f *feed) close() {
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.all {
		s.drop()
	}
}

// frameFor returns the frame of c that s gets, or nil when s gets none:
// s sees an event when the article after it is one s may see and that
// matches its filters; one that stops being so comes as deleted, one that
// becomes so as created.
func (s *subscriber) frameFor(c *change) []byte {
	in := func(st domain.State) bool {
		a := st.Article
		return st.Live() && domain.Visible(s.reader, a.Status, a.AuthorID) &&
			(s.authorID == "" || a.AuthorID == s.authorID) &&
			(s.tag == "" || hasTag(a.Tags, s.tag))
	}
	if c.typ == events.ArticleErased {
		if c.beforeKnown && in(c.before) || !c.beforeKnown && s.reader.Editor() && s.authorID == "" && s.tag == "" {
			return c.frame(asIs)
		}
		return nil
	}
	before, after := c.beforeKnown && in(c.before), in(c.after)
	switch {
	case before && after, !before && after && c.typ == events.ArticleCreated, before && !after && c.typ == events.ArticleDeleted:
		return c.frame(asIs)
	case after:
		return c.frame(asCreated)
	case before:
		return c.frame(asDeleted)
	}
	return nil
}

func hasTag(tags []string, t string) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

// subscribe registers s; from is the sequence it resumes after, or -1 to
// start with the next event. The hub starts with the first client, unless
// it is pinned (then a client that comes while it starts catches up on
// its own until it runs).
func (f *feed) subscribe(ctx context.Context, s *subscriber, from int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		p := httpx.NewProblem(http.StatusServiceUnavailable, "the server is stopping; resume on another instance")
		p.RetryAfter = 1
		return p
	}
	f.all[s] = struct{}{}
	if f.hub == nil && !f.pinned {
		last, err := f.src.LastSeq(ctx)
		if err != nil {
			return err
		}
		f.startHub(last)
	}
	if f.hub == nil && from < 0 {
		// A pinned hub that is starting (again): catch up from the log's
		// end until it runs.
		last, err := f.src.LastSeq(ctx)
		if err != nil {
			return err
		}
		from = int64(last)
	}
	if f.hub != nil && (from < 0 || uint64(from) >= f.last) {
		s.pos = max(f.last, uint64(max(from, 0)))
		f.subs[s] = struct{}{}
		return nil
	}
	s.pos = uint64(from)
	cctx, cancel := context.WithCancel(f.ctx)
	s.cancel = cancel
	go f.catchUp(cctx, s)
	return nil
}

// unsubscribe forgets s; the hub stops with the last client.
func (f *feed) unsubscribe(s *subscriber) {
	if s.cancel != nil {
		s.cancel()
	}
	f.mu.Lock()
	delete(f.subs, s)
	delete(f.all, s)
	if f.clients.Add(-1) == 0 && f.hub != nil && !f.pinned {
		f.hub()
		f.hub = nil
	}
	f.mu.Unlock()
}

// startHub starts following the log after last; call with f.mu held.
func (f *feed) startHub(last uint64) {
	ctx, cancel, gen := f.newHub(last)
	go func() {
		if err := f.follow(ctx, gen, last); err != nil && ctx.Err() == nil {
			f.hubFailed(gen, cancel)
		}
	}()
}

// newHub records a hub that follows the log after last; call with f.mu held.
func (f *feed) newHub(last uint64) (context.Context, context.CancelFunc, uint64) {
	ctx, cancel := context.WithCancel(f.ctx)
	f.hub, f.last = cancel, last
	f.lastNow.Store(last)
	f.hubGen++
	return ctx, cancel, f.hubGen
}

// follow is the hub number gen: it folds every message of the log after
// last, hands it to the view, then its frame to every client that may see
// it, until ctx ends (nil) or the log cannot be followed (the error).
func (f *feed) follow(ctx context.Context, gen, last uint64) error {
	fo := &folder{shared: f.shared, log: f.log}
	return f.src.Follow(ctx, last+1, func(m events.Message) error {
		var c *change
		var err error
		settled := true
		if f.view != nil {
			c, settled, err = f.view(ctx, m, fo)
		} else {
			c, err = fo.fold(ctx, m)
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		for !settled && len(f.subs) > 0 {
			// Clients need the change the view did not work out.
			f.mu.Unlock()
			if c, err = fo.fold(ctx, m); err != nil {
				return err
			}
			settled = true
			f.mu.Lock()
		}
		defer f.mu.Unlock()
		if f.hubGen != gen {
			return context.Canceled
		}
		f.last = m.Seq
		f.lastNow.Store(m.Seq)
		for s := range f.subs {
			if m.Seq <= s.pos {
				continue
			}
			s.pos = m.Seq
			if c == nil {
				continue
			}
			if fr := s.frameFor(c); fr != nil {
				select {
				case s.queue <- fr:
				default:
					s.drop() // too slow: it resumes from its last event
					delete(f.subs, s)
				}
			}
		}
		return nil
	})
}

// hubFailed ends hub gen, which could not follow the log: every client it
// serves ends its stream and resumes, and the next one (or, when pinned,
// the hub's own loop) starts a hub again.
func (f *feed) hubFailed(gen uint64, cancel context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hubGen == gen {
		for s := range f.subs {
			s.drop()
		}
		clear(f.subs)
		f.hub = nil
		cancel()
	}
}

// hubRetry is how long a pinned hub that failed waits before it starts again.
const hubRetry = 250 * time.Millisecond

// run is the pinned hub: it follows the log after from until ctx ends or
// the feed closes, and after a failure starts again after the last message
// it handled, so the view misses none.
func (f *feed) run(ctx context.Context, from uint64, logger *slog.Logger) {
	last := from
	for {
		f.mu.Lock()
		hctx, cancel, gen := f.newHub(last)
		f.mu.Unlock()
		stop := context.AfterFunc(ctx, cancel)
		err := f.follow(hctx, gen, last)
		stop()
		if hctx.Err() != nil {
			cancel()
			return
		}
		f.hubFailed(gen, cancel)
		f.mu.Lock()
		last = f.last
		f.mu.Unlock()
		logger.Warn("query view: following the stream failed; starting again", "after", last, "err", err)
		if !sleep(ctx, hubRetry) {
			return
		}
	}
}

// catchUp reads the log for s from where it resumes until it meets the
// hub, then hands s over to it.
func (f *feed) catchUp(ctx context.Context, s *subscriber) {
	fo := &folder{own: newStates("", catchUpCacheBytes, nil), shared: f.shared, log: f.log}
	err := f.src.Follow(ctx, s.pos+1, func(m events.Message) error {
		c, err := fo.fold(ctx, m)
		if err != nil {
			return err
		}
		if c != nil {
			if fr := s.frameFor(c); fr != nil {
				select {
				case s.queue <- fr:
				case <-s.dropped:
					return errJoined
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		s.pos = m.Seq
		if m.Seq < f.lastNow.Load() {
			return nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hub == nil || m.Seq < f.last {
			return nil
		}
		if ctx.Err() == nil { // not unsubscribed meanwhile
			f.subs[s] = struct{}{}
		}
		return errJoined
	})
	if err != nil && !errors.Is(err, errJoined) && ctx.Err() == nil {
		s.drop()
	}
}

// feedParams are the query parameters of GET /api/changes.
var feedParams = []string{"since", "author_id", "tag"}

// changes handles GET /api/changes: Server-Sent Events.
func (s *Service) changes(c *fiber.Ctx) error {
	if err := httpx.Params(c, feedParams...); err != nil {
		return err
	}
	f := s.feed
	from := int64(-1)
	for _, v := range []struct{ name, value string }{{"Last-Event-ID", c.Get("Last-Event-ID")}, {"since", c.Query("since")}} {
		if v.value == "" {
			continue
		}
		n, err := strconv.ParseUint(v.value, 10, 63)
		if err != nil {
			return badRequest(v.name + " must be a stream sequence (a whole number) from the feed's event ids")
		}
		from = int64(n)
		break
	}
	if c.Method() == fiber.MethodHead {
		c.Set(fiber.HeaderContentType, "text/event-stream")
		return nil
	}
	if n := f.clients.Add(1); n > int64(f.opts.MaxClients) {
		f.clients.Add(-1)
		p := httpx.NewProblem(http.StatusServiceUnavailable, "the live feed has as many clients as it takes; retry shortly")
		p.RetryAfter = 5
		return p
	}
	sub := &subscriber{reader: httpx.PrincipalOf(c), authorID: c.Query("author_id"), tag: c.Query("tag"),
		queue: make(chan []byte, f.opts.Queue), dropped: make(chan struct{}), conn: c.Context().Conn()}
	sub.authorID, sub.tag = string([]byte(sub.authorID)), string([]byte(sub.tag)) // Fiber's values are reused
	if err := f.subscribe(c.UserContext(), sub, from); err != nil {
		f.unsubscribe(sub)
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) { f.serve(w, sub) })
	return nil
}

// serve is the one writer of a client's stream: a frame and a flush per
// event, a comment line every heartbeat, until the client goes, is dropped
// or the server stops.
func (f *feed) serve(w *bufio.Writer, s *subscriber) {
	defer f.unsubscribe(s)
	t := time.NewTicker(f.opts.Heartbeat)
	defer t.Stop()
	write := func(b []byte) bool {
		// The server set one deadline for the whole answer: each event
		// gets its own.
		select {
		case <-s.dropped:
			return false
		default:
		}
		if s.conn != nil {
			_ = s.conn.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return w.Flush() == nil
	}
	if !write([]byte(": inkstream live feed\n\n")) {
		return
	}
	for {
		select {
		case fr := <-s.queue:
			if !write(fr) {
				return
			}
		case <-t.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-s.dropped:
			return
		case <-f.ctx.Done():
			return
		}
	}
}
