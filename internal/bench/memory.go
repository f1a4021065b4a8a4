package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/procfs"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// memory measures the query API on buckets of cfg.MemoryArticles articles
// of cfg.ContentBytes bytes of content each: for each count, the bucket is
// filled up to it, then a fresh query-api process starts on it (cold
// start), serves a cached GET load beside raw Fiber, and its peak RSS is
// read. The bucket is filled directly with the snapshots and index headers
// the projector would write (natsx.Snapshots.PutAsync), without events:
// projecting a million events would take longer than the part may.
func (r *runner) memory(ctx context.Context, res *Result) error {
	c := r.cfg
	ns, url, conn, err := r.startNATS(ctx, "nats-server-memory", "store-memory")
	if err != nil {
		return err
	}
	defer conn.nc.Close()
	ncfg, err := natsDefaults(url)
	if err != nil {
		return err
	}
	resources, err := provision(ctx, conn.js, ncfg)
	if err != nil {
		return err
	}
	snaps := natsx.NewSnapshots(conn.js, resources.KV)
	body := memoryContent(c.ContentBytes)
	var ids []string // the first SeedArticles: the GET load's
	filled := 0
	for _, n := range c.MemoryArticles {
		row := Memory{Articles: int64(n), ContentBytes: c.ContentBytes}
		r.logf("memory: filling the bucket up to %d articles of %d bytes of content", n, c.ContentBytes)
		t := time.Now()
		prog := newProgress(c.Log, r.logf, "memory: filling", "snapshots", int64(n))
		err := fillSnapshots(ctx, snaps, filled, n, body, func(i int, id string) {
			if len(ids) < c.SeedArticles {
				ids = append(ids, id)
			}
			if i%4096 == 0 {
				prog.set(int64(i))
			}
		})
		prog.set(int64(n))
		prog.end()
		if err != nil {
			return fmt.Errorf("memory: fill: %w", err)
		}
		row.FillSeconds = time.Since(t).Seconds()
		filled = n
		st, err := resources.KV.Status(ctx)
		if err != nil {
			return fmt.Errorf("bucket status: %w", err)
		}
		if st.Values() != uint64(n) {
			return fmt.Errorf("memory: the bucket holds %d snapshots, want %d", st.Values(), n)
		}
		row.BucketBytes = int64(st.Bytes())
		r.logf("memory: %d snapshots, %d MiB, written in %.1f s; starting a query-api", n, row.BucketBytes>>20, row.FillSeconds)

		name := fmt.Sprintf("query-api-%d", n)
		serverBefore, err := cpuTime(ns.Pid())
		if err != nil {
			return err
		}
		serverCalls, err := ioCalls(ns.Pid())
		if err != nil {
			return err
		}
		query, queryAddr, took, err := r.startService(ctx, name, "query-api", url)
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		row.ColdStartSeconds = took.Seconds()
		// The CPU of the cold start: all the query API has used since its
		// exec, and what the server used meanwhile.
		serverAfter, err1 := cpuTime(ns.Pid())
		own, err2 := cpuTime(query.Pid())
		serverCallsAfter, err3 := ioCalls(ns.Pid())
		ownCalls, err4 := ioCalls(query.Pid())
		if err1 == nil && err2 == nil && err3 == nil && err4 == nil {
			for _, u := range []struct {
				name  string
				cpu   time.Duration
				calls int64
			}{{ns.Name, serverAfter - serverBefore, serverCallsAfter - serverCalls}, {name, own, ownCalls}} {
				row.ColdStartCPU = append(row.ColdStartCPU, ProcCPU{Process: u.name, Cores: div(float64(u.cpu), float64(took)),
					USPerReq: div(float64(u.cpu/time.Microsecond), float64(n)), IOCallsPerReq: div(float64(u.calls), float64(n))})
			}
		}
		view, err := metric(ctx, queryAddr, "inkstream_query_articles")
		if err != nil {
			return err
		}
		row.ViewArticles = int64(view)
		if heap, err := metric(ctx, queryAddr, "go_memstats_heap_inuse_bytes"); err == nil {
			row.ReadyHeapMiB = heap / (1 << 20)
		}
		row.ReadyRSSMiB = float64(vmRSS(query.Pid())) / 1024
		r.logf("memory: query-api ready in %s with %d articles in its view, RSS %.0f MiB", took.Round(time.Millisecond), row.ViewArticles, row.ReadyRSSMiB)
		// Read once, the bodies enter the cache: the GET load is of cached reads.
		bodies, err := fetchArticles(ctx, queryAddr, ids)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("raw Fiber baseline (%s articles)", fmtInt(float64(n)))
		if row.RawFiber, row.Get, err = r.getVsRawFiber(ctx, ids, bodies, queryAddr, []*proc{ns, query}, res, label); err != nil {
			return err
		}
		r.ps.stop(query, 10*time.Second)
		row.PeakRSSMiB = mib(query)
		r.logf("memory: %d articles: peak RSS %.0f MiB", n, row.PeakRSSMiB)
		res.Memory = append(res.Memory, row)
		res.RSS = append(res.RSS, RSS{fmt.Sprintf("query-api (%s articles of %s bytes)", fmtInt(float64(n)), fmtInt(float64(c.ContentBytes))), row.PeakRSSMiB})
	}
	r.ps.stop(ns, 10*time.Second)
	res.RSS = append(res.RSS, RSS{"nats-server (memory)", mib(ns)})
	return nil
}

// memoryContent is an article's content of n bytes.
func memoryContent(n int) string {
	return strings.Repeat(content, n/len(content)+1)[:n]
}

// fillSnapshots writes the snapshots of articles from to to-1 as the
// projector writes a created article's (its state folded from the create
// event, with the index header), asynchronously, at most publishWindow
// awaiting their acks; each is told of every article written.
func fillSnapshots(ctx context.Context, snaps *natsx.Snapshots, from, to int, body string, each func(i int, id string)) error {
	ch := make(chan readmodel.Pending, publishWindow)
	errc := make(chan error, 1)
	go func() {
		var first error
		for p := range ch {
			if _, err := p.Wait(ctx); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	at := time.Now().UTC().Truncate(time.Microsecond)
	err := func() error {
		defer close(ch)
		for i := from; i < to; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			f := articleFields(title("stored", i), i)
			f.Content = body
			e := domain.Event{ID: id.String(), ArticleID: id.String(), Version: 1, At: at, Actor: actor, Change: domain.ArticleCreated{Fields: f}}
			st, err := domain.Apply(domain.State{}, e)
			if err != nil {
				return err
			}
			// No events: a stream sequence of the article's own, as the
			// projector's would be.
			ch <- snaps.PutAsync(ctx, readmodel.FromState(st, uint64(i+1)), 0)
			each(i, e.ArticleID)
		}
		return nil
	}()
	if werr := <-errc; err == nil {
		err = werr
	}
	return err
}

// vmRSS is a process's resident set size now, in KiB (0 if unknown).
func vmRSS(pid int) int64 {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmRSS / 1024)
}
