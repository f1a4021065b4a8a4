package natsx

import "time"

// Options are how a process reaches and lays out JetStream.
type Options struct {
	URL             string        // comma-separated server URLs
	Name            string        // connection name shown by `nats server report connections`
	Creds           string        // optional credentials file
	StreamReplicas  int           // replicas of stream ARTICLES
	KVReplicas      int           // replicas of bucket articles
	DuplicateWindow time.Duration // JetStream de-duplication window
	// StreamCompression is how the stream stores its messages: s2 or none.
	StreamCompression string
	Provision         bool // create-or-update stream, bucket and consumer at start-up
}
