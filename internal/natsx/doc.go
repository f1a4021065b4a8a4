// Package natsx is inkstream's adapter to NATS and JetStream: connecting,
// provisioning the stream, bucket and consumer, the event store (append with
// per-article optimistic concurrency and de-duplication, load an article's
// events) and the embedded nats-server.
package natsx
