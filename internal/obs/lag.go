package obs

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the read model's progress, measured at each scrape by every
// projector and query API: one number for the whole system, reported by
// several processes, so that it is there to see also when no projector
// runs. Take the max over them.
const (
	MetricLagEvents       = "inkstream_projector_lag_events"
	MetricLagSeconds      = "inkstream_projector_lag_seconds"
	MetricStreamAvailable = "inkstream_stream_available"
)

// MetricFeedClients is the gauge of clients connected to the live change
// feed (GET /api/changes) of a query API.
const MetricFeedClients = "inkstream_feed_clients"

// LagSource tells how far the projectors are behind the log.
type LagSource interface {
	// Lag returns how many events the log holds past the projector
	// consumer's ack floor and when the first of them was written (zero
	// when none).
	Lag(ctx context.Context) (events uint64, oldest time.Time, err error)
}

// RegisterLag registers the read model's lag behind the log on reg: events
// (the stream's last sequence minus the consumer's ack floor), seconds (the
// age of the oldest event not yet acknowledged, 0 when none), and whether
// the stream answered at all. Each scrape asks src, within timeout.
func RegisterLag(reg prometheus.Registerer, src LagSource, timeout time.Duration, log *slog.Logger) {
	reg.MustRegister(&lagCollector{src: src, timeout: timeout, log: log,
		events: prometheus.NewDesc(MetricLagEvents,
			"Events in stream ARTICLES past the ack floor of consumer projector: written but not yet in the read model. Every projector and query API reports it.", nil, nil),
		seconds: prometheus.NewDesc(MetricLagSeconds,
			"Age of the oldest event in stream ARTICLES that consumer projector has not acknowledged; 0 when the read model has every event.", nil, nil),
		available: prometheus.NewDesc(MetricStreamAvailable,
			"1 when stream ARTICLES and consumer projector answered this scrape's requests in time (they have a leader: in a cluster, a quorum of replicas), else 0.", nil, nil),
	})
}

type lagCollector struct {
	src                        LagSource
	timeout                    time.Duration
	log                        *slog.Logger
	events, seconds, available *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.seconds
	ch <- c.available
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, oldest, err := c.src.Lag(ctx)
	if err != nil {
		c.log.Debug("metrics: read model lag unknown", "err", err)
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(time.Since(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.GaugeValue, age)
}
