// Package obs holds what every role shares to be seen from outside:
// tracing (OpenTelemetry, W3C trace context carried in NATS headers), the
// log handler that puts request and trace ids on log lines, the metrics
// every role exports the same way (caches, publishes, the read model's lag,
// messages a fold skipped), and the build's version.
package obs

import (
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/pkg/events"
)

// Skips counts and logs the messages a fold left out (events.Skipped), each
// once per process however often it is read again.
type Skips struct {
	log     *slog.Logger
	counter prometheus.Counter
	mu      sync.Mutex
	seen    map[uint64]struct{}
}

const maxRemembered = 10_000

// NewSkips returns the account of skipped messages, registered on reg.
func NewSkips(reg prometheus.Registerer, log *slog.Logger) *Skips {
	s := &Skips{log: log, seen: make(map[uint64]struct{}), counter: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "inkstream_skipped_messages_total",
		Help: "Messages on an article's subjects that are not a valid next event of it (undecodable, another article's, a version that does not follow), left out of every fold.",
	})}
	reg.MustRegister(s.counter)
	return s
}

// Report counts and logs each skipped message the first time it is seen.
func (s *Skips) Report(skipped ...events.Skipped) {
	if len(skipped) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range skipped {
		if _, ok := s.seen[sk.Seq]; ok {
			continue
		}
		if len(s.seen) >= maxRemembered {
			clear(s.seen) // a flood of skipped messages is logged again, not remembered for ever
		}
		s.seen[sk.Seq] = struct{}{}
		s.counter.Inc()
		s.log.Warn("skipped a message that is not a valid event of its article", "seq", sk.Seq, "subject", sk.Subject, "reason", sk.Reason)
	}
}
