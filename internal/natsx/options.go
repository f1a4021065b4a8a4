package natsx

import "time"

// Options are how a process reaches and lays out JetStream.
type Options struct {
	URL  string // comma-separated server URLs
	Name string // connection name shown by `nats server report connections`

	// Context is a NATS CLI context: a name the CLI knows, or a .json
	// file. Its settings apply unless a field below sets them itself.
	Context string
	// Credentials: at most one of Creds, NKey and User/Password.
	Creds    string // credentials file (JWT and nkey seed)
	NKey     string // nkey seed file
	User     string
	Password string
	// TLS with a private CA: CA verifies the servers, Cert and Key are
	// this client's certificate when the servers ask for one.
	CA, Cert, Key string
	// ConnectTimeout bounds the first dial (admin commands); 0 retries it
	// until the context ends (services, which may start before NATS).
	ConnectTimeout time.Duration

	StreamReplicas  int           // replicas of stream ARTICLES
	KVReplicas      int           // replicas of bucket articles
	DuplicateWindow time.Duration // JetStream de-duplication window
	// StreamCompression is how the stream stores its messages: s2 or none.
	StreamCompression string
	// Provision creates or updates the stream, bucket and consumer at
	// start-up (it needs the admin user); otherwise a process looks them
	// up and waits for them.
	Provision bool
}
