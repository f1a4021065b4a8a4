package obs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Publish is the account of a process's event publishes to JetStream.
// A nil *Publish counts nothing.
type Publish struct {
	latency prometheus.Observer
	retries prometheus.Counter
}

// NewPublish registers the publish metrics on reg.
func NewPublish(reg prometheus.Registerer) *Publish {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "inkstream_jetstream_publish_duration_seconds",
		Help:    "Time from publishing an event to stream ARTICLES to its acknowledgement, one attempt each (a retry is an attempt of its own).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "inkstream_jetstream_publish_retries_total",
		Help: "Event publishes repeated with the same message id after JetStream did not answer (a time-out, a leader election).",
	})
	reg.MustRegister(h, c)
	return &Publish{latency: h, retries: c}
}

// Took observes one publish attempt that JetStream answered.
func (p *Publish) Took(d time.Duration) {
	if p != nil {
		p.latency.Observe(d.Seconds())
	}
}

// Retry counts one publish repeated.
func (p *Publish) Retry() {
	if p != nil {
		p.retries.Inc()
	}
}
