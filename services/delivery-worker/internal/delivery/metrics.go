package delivery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

type metrics struct {
	delivered prometheus.Counter
	failed    prometheus.Counter
	retrying  prometheus.Counter
	duration  *prometheus.HistogramVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_events_delivered_total", Help: "Deliveries that got a 2xx answer.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_events_failed_total", Help: "Deliveries that failed for good after their last attempt.",
		}),
		retrying: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_events_retrying_total", Help: "Failed attempts that scheduled a retry.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dispatch_delivery_duration_seconds",
			Help:    "Duration of HTTP delivery attempts, by outcome class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
	}
	r.MustRegister(m.delivered, m.failed, m.retrying, m.duration)
	return m
}

func (m *metrics) observe(a domain.Attempt, status domain.DeliveryStatus) {
	result := "success"
	if a.ErrorClass != domain.ErrorNone {
		result = string(a.ErrorClass)
	}
	m.duration.WithLabelValues(result).Observe(a.Duration.Seconds())
	switch status {
	case domain.DeliveryDelivered:
		m.delivered.Inc()
	case domain.DeliveryFailed:
		m.failed.Inc()
	case domain.DeliveryRetrying:
		m.retrying.Inc()
	}
}
