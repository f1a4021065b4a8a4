package natsx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
)

// BenchmarkHistoryOnALongStream reads the history of a random article of
// 100 000 (3 events each, written version by version, so an article's
// events are 100 000 messages apart) on one stream. "history" is
// EventStore.History; "one-batch" is the request it used to send (one batch
// of 256 on the article's wildcard, read to its end-of-batch marker), as a
// baseline in the same run; "last" is a direct get of the article's last
// message, the floor of one request.
func BenchmarkHistoryOnALongStream(b *testing.B) {
	url := natstest.RunServer(b).URL()
	conn, _ := natstest.Connect(b, url, 1)
	es := natsx.NewEventStore(conn.JS)
	const articles = 100_000
	for v := 1; v <= 3; v++ {
		for i := range articles {
			c := create("Title of a benchmark article")
			if v > 1 {
				c = retitle(fmt.Sprint("Version ", v))
			}
			msg, err := natsx.EventMsg(event(fmt.Sprintf("a%06d", i), v, c), 0, fmt.Sprint("m", i, "-", v), "")
			if err != nil {
				b.Fatal(err)
			}
			msg.Header.Del("Nats-Expected-Last-Subject-Sequence")
			msg.Header.Del("Nats-Expected-Last-Subject-Sequence-Subject")
			if _, err := conn.JS.PublishMsgAsync(msg); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-conn.JS.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("seeding did not complete in a minute")
		}
	}
	ctx := context.Background()
	random := func() string { return fmt.Sprintf("a%06d", rand.IntN(articles)) }

	b.Run("history", func(b *testing.B) {
		for b.Loop() {
			h, err := es.History(ctx, random(), 0)
			if err != nil || len(h.Events) != 3 {
				b.Fatal(len(h.Events), err)
			}
		}
	})
	direct := func(b *testing.B, req any) int {
		data, _ := json.Marshal(req)
		inbox := nats.NewInbox()
		sub, err := conn.NC.SubscribeSync(inbox)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := conn.NC.PublishRequest("$JS.API.DIRECT.GET."+natsx.Stream, inbox, data); err != nil {
			b.Fatal(err)
		}
		for n := 0; ; n++ {
			msg, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if msg.Header.Get("Status") != "" { // 204: end of batch
				return n
			}
			if _, batched := req.(map[string]any)["batch"]; !batched {
				return n + 1
			}
		}
	}
	b.Run("one-batch", func(b *testing.B) {
		for b.Loop() {
			req := map[string]any{"seq": 1, "next_by_subj": "articles." + random() + ".>", "batch": 256, "max_bytes": 1 << 20}
			if n := direct(b, req); n != 3 {
				b.Fatal(n)
			}
		}
	})
	b.Run("last", func(b *testing.B) {
		for b.Loop() {
			if n := direct(b, map[string]any{"last_by_subj": "articles." + random() + ".>"}); n != 1 {
				b.Fatal(n)
			}
		}
	})
}
