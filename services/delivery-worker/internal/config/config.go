// Package config parses the delivery worker's environment once, at start-up.
package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
)

// Config is the delivery worker's settings. ADDR serves health and metrics.
type Config struct {
	config.Common
	config.Redis
	config.SecretKeys
	// Delivery holds the defaults of the delivery settings and the
	// circuit breaker's, which the ingest API reads too.
	config.Delivery
	KafkaConsumerGroup  string        // KAFKA_CONSUMER_GROUP
	KafkaSessionTimeout time.Duration // KAFKA_SESSION_TIMEOUT
	Concurrency         int           // DELIVERY_CONCURRENCY
	LeaseMargin         time.Duration // DELIVERY_LEASE_MARGIN
	// AllowCIDRs opens internal address ranges (loopback, private) to
	// deliveries, for development and tests (DELIVERY_ALLOW_CIDRS).
	AllowCIDRs []netip.Prefix
	// DestinationSlots is the most of this worker's Concurrency slots that
	// deliveries to one destination may hold at once, whatever their
	// subscriptions' own limits say (DELIVERY_DESTINATION_SLOTS).
	DestinationSlots int
	// MaxResponseHeaderBytes bounds a receiver's response headers
	// (DELIVERY_MAX_RESPONSE_HEADER_BYTES).
	MaxResponseHeaderBytes int
	// ProxyIgnored is set when HTTP_PROXY or HTTPS_PROXY is: deliveries
	// never use those, and the worker says so at start.
	ProxyIgnored bool
	// Proxy, if set, is the HTTP CONNECT proxy every delivery goes through
	// (DELIVERY_PROXY_URL, ADR 13).
	Proxy *url.URL
	// Traceparent sends each attempt's W3C trace context to the receiver
	// (DELIVERY_TRACEPARENT; off by default, and only with tracing on).
	Traceparent bool
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	c := Config{
		Common:              env.Common(30),
		Redis:               env.Redis(),
		SecretKeys:          env.SecretKeys(),
		Delivery:            env.Delivery(),
		KafkaConsumerGroup:  env.String("KAFKA_CONSUMER_GROUP", "dispatch-workers"),
		KafkaSessionTimeout: env.Duration("KAFKA_SESSION_TIMEOUT", 45*time.Second),
		Concurrency:         env.Int("DELIVERY_CONCURRENCY", 512, 1),
		LeaseMargin:         env.Duration("DELIVERY_LEASE_MARGIN", 30*time.Second),
	}
	c.AllowCIDRs = env.Prefixes("DELIVERY_ALLOW_CIDRS")
	// A quarter by default: one destination that hangs until every timeout
	// leaves three quarters of the worker to everyone else, and one busy
	// healthy destination still gets 128 requests in flight at the default
	// concurrency, far more than its rate limit needs.
	c.DestinationSlots = env.Int("DELIVERY_DESTINATION_SLOTS", max(1, c.Concurrency/4), 1)
	if c.DestinationSlots > c.Concurrency {
		env.Fail("DELIVERY_DESTINATION_SLOTS", "%d is more than DELIVERY_CONCURRENCY %d", c.DestinationSlots, c.Concurrency)
	}
	c.MaxResponseHeaderBytes = env.Int("DELIVERY_MAX_RESPONSE_HEADER_BYTES", 64<<10, 1<<10)
	c.ProxyIgnored = env.Set("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
	if raw := env.String("DELIVERY_PROXY_URL", ""); raw != "" {
		u, err := egress.ParseProxyURL(raw)
		if err != nil {
			// The message never repeats the URL: it may hold a password.
			env.Fail("DELIVERY_PROXY_URL", "%v", err)
		}
		c.Proxy = u
	}
	if v := env.String("DELIVERY_TRACEPARENT", "false"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			env.Fail("DELIVERY_TRACEPARENT", "%q is not true or false", v)
		}
		c.Traceparent = on
	}
	return c, env.Err()
}
