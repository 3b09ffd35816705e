package resilience

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	throttled      *prometheus.CounterVec
	rateRejections prometheus.Counter
	state          *prometheus.GaugeVec
	trips          *prometheus.CounterVec
	fallback       prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch_events_throttled_total",
			Help: "Deliveries rescheduled without an attempt, by reason: rate_limited, circuit_open, concurrency_limited, destination_busy.",
		}, []string{"reason"}),
		rateRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_rate_limiter_rejections_total", Help: "Deliveries refused by a destination's rate limit.",
		}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dispatch_circuit_breaker_state", Help: "Circuit state as last seen by this worker: 0 closed, 1 half-open, 2 open.",
		}, []string{"subscription_id"}),
		trips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch_circuit_breaker_trips_total", Help: "Times a subscription's circuit opened.",
		}, []string{"subscription_id"}),
		fallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dispatch_resilience_fallback", Help: "1 while Redis is unreachable and limits hold per worker, else 0.",
		}),
	}
	r.MustRegister(m.throttled, m.rateRejections, m.state, m.trips, m.fallback)
	for _, reason := range []Reason{RateLimited, CircuitOpen, ConcurrencyLimited, DestinationBusy} {
		m.throttled.WithLabelValues(string(reason)) // export zeros before the first refusal
	}
	return m
}
