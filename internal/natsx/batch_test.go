package natsx_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// TestAppendBatchIsAtomic: a batch whose one event finds its article
// already written stores nothing; a whole batch lands at consecutive
// sequences; its retry stores nothing and finds the original.
func TestAppendBatchIsAtomic(t *testing.T) {
	es, res := newStore(t)
	ctx := natstest.Context(t)
	if _, _, err := es.Append(ctx, event("taken", 1, create("T")), 0, "taken-1", ""); err != nil {
		t.Fatal(err)
	}
	batch := func(ids ...string) ([]domain.Event, []string) {
		var evs []domain.Event
		var msgIDs []string
		for i, id := range ids {
			evs = append(evs, event(id, 1, create(id)))
			msgIDs = append(msgIDs, "batch-"+id+"-"+strconv.Itoa(i))
		}
		return evs, msgIDs
	}
	msgs := func() uint64 {
		info, err := res.Stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	evs, ids := batch("b1", "b2", "taken", "b4")
	if _, _, _, err := es.AppendBatch(ctx, evs, ids, "h"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("batch with a taken article: %v, want ErrConflict", err)
	}
	if n := msgs(); n != 1 {
		t.Fatalf("stream holds %d messages after a refused batch, want 1", n)
	}

	evs, ids = batch("c1", "c2", "c3")
	first, last, dup, err := es.AppendBatch(ctx, evs, ids, "h")
	if err != nil || dup || first != 2 || last != 4 {
		t.Fatalf("batch: %d..%d dup=%v %v", first, last, dup, err)
	}
	got, err := es.Range(ctx, first, last)
	if err != nil || len(got) != 3 || got[2].MsgID != ids[2] || got[0].RequestHash != "h" {
		t.Fatalf("range: %+v %v", got, err)
	}
	// A retry has new article ids but the same message ids.
	retry, _ := batch("d1", "d2", "d3")
	first2, _, dup, err := es.AppendBatch(ctx, retry, ids, "h")
	if err != nil || !dup || first2 != first {
		t.Fatalf("retry: first %d dup=%v %v; want the original %d", first2, dup, err, first)
	}
	if n := msgs(); n != 4 {
		t.Fatalf("stream holds %d messages after the retry, want 4", n)
	}
}
