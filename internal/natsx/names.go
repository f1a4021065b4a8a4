package natsx

import "github.com/inkstream/inkstream/pkg/events"

// The names of inkstream's NATS resources, in one place. The event subjects
// are the wire contract and live in package events.
const (
	// Stream is the stream of every event.
	Stream = events.StreamName
	// Bucket is the KV bucket of the snapshots (key = article id).
	Bucket = "articles"
	// ConsumerName is the durable consumer the projectors share.
	ConsumerName = "projector"
	// BucketStream is the stream behind the bucket.
	BucketStream = "KV_" + Bucket
	// BucketSubjects matches every key of the bucket.
	BucketSubjects = "$KV." + Bucket + ".>"
)

// KeySubject is the subject a KV put of key publishes to.
func KeySubject(key string) string { return "$KV." + Bucket + "." + key }
