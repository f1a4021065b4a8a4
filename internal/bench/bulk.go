package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"
)

// bulk runs POST /api/articles/_bulk of cfg.BulkSize articles from
// cfg.BulkConns connections beside as many publishers of raw atomic
// batches of the same create events, in turns.
func (r *runner) bulk(ctx context.Context, out *Loads, js jetstream.JetStream, cmdAddr string, all []*proc) error {
	c := r.cfg
	raw := &batchLoop{js: js, conns: c.BulkConns, size: c.BulkSize, warmup: c.warmup(), duration: c.Duration, cpu: r.meter(ctx, "raw-batch", all...)}
	bulk := &closedLoop{addr: cmdAddr, build: bulkCreate(cmdAddr, r.authz, c.BulkSize), want: http.StatusCreated,
		conns: c.BulkConns, warmup: c.warmup(), duration: c.Duration, cpu: r.meter(ctx, "bulk", all...)}
	r.logf("baseline: raw atomic batch publish of %d create events (%d publishers) and POST /api/articles/_bulk of %d articles (%d connections): %s warm-up + %s each, in %d turns",
		c.BulkSize, c.BulkConns, c.BulkSize, c.BulkConns, c.warmup(), c.Duration, turns)
	res, err := interleaved(ctx, turns, raw, bulk)
	if err != nil {
		return fmt.Errorf("raw atomic batch and bulk create: %w", err)
	}
	if err := alive(all...); err != nil {
		return fmt.Errorf("raw atomic batch and bulk create: %w", err)
	}
	out.RawBatch, out.Bulk = perItem(res[0], c.BulkSize), perItem(res[1], c.BulkSize)
	r.logf("baseline: raw atomic batch: %s (%.0f events/s)", summary(out.RawBatch), out.RawBatch.RPS*float64(c.BulkSize))
	r.logf("POST /api/articles/_bulk: %s (%.0f articles/s)", summary(out.Bulk), out.Bulk.RPS*float64(c.BulkSize))
	return nil
}

// perItem turns the CPU figures of a load whose requests carry size items
// each into figures per item.
func perItem(l Load, size int) Load {
	cpu := make([]ProcCPU, len(l.CPU))
	for i, p := range l.CPU {
		p.USPerReq /= float64(size)
		p.IOCallsPerReq /= float64(size)
		cpu[i] = p
	}
	l.CPU = cpu
	return l
}

// bulkCreate builds bulk creates of size articles: request i of worker w
// asks for articles (w*100 000 000+i)*size on, the articles publishBatch
// makes the events of.
func bulkCreate(addr, authz string, size int) func(w, i int, req *fasthttp.Request) {
	url := "http://" + addr + "/api/articles/_bulk"
	prefix, suffix := bodyTemplate("bulk")
	return func(w, i int, req *fasthttp.Request) {
		var num [20]byte
		req.Header.SetMethod(http.MethodPost)
		req.SetRequestURI(url)
		req.Header.SetContentType("application/json")
		req.Header.Set(fasthttp.HeaderAuthorization, authz)
		first := (w*100_000_000 + i) * size
		req.AppendBodyString(`{"articles":[`)
		for j := range size {
			if j > 0 {
				req.AppendBodyString(",")
			}
			req.AppendBody(prefix)
			req.AppendBody(strconv.AppendInt(num[:0], int64(first+j), 10))
			req.AppendBody(suffix)
		}
		req.AppendBodyString(`]}`)
	}
}
