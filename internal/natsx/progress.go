package natsx

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Progress tells how far the log and the read model have come: the
// stream's last sequence, the projector consumer's ack floor and the
// bucket's last write.
type Progress struct {
	*Log
	snaps *Snapshots
}

// NewProgress returns the progress of the stream and bucket kv.
func NewProgress(js jetstream.JetStream, kv jetstream.KeyValue) *Progress {
	return &Progress{Log: NewLog(js), snaps: NewSnapshots(js, kv)}
}

// BucketLastSeq is the sequence of the bucket's last write.
func (p *Progress) BucketLastSeq(ctx context.Context) (uint64, error) { return p.snaps.LastSeq(ctx) }
