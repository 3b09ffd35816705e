package delivery

import (
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// MaxTLSTransports bounds the transports kept for subscriptions with
// mutual TLS settings, one per distinct settings: each holds its own
// connection pool, so that a client certificate is never presented on a
// connection made for another subscription, nor another's on its.
const MaxTLSTransports = 256

// transports hands out the HTTP client for a job: the shared pooled one
// when it has no TLS settings, which is nearly every job and costs one
// comparison, and otherwise one per distinct settings, cached by their
// SHA-256 and evicted least recently used first.
type transports struct {
	base   *http.Transport
	shared *http.Client
	// redirects is the shared client's redirect policy, for the others.
	redirects func(*http.Request, []*http.Request) error

	mu    sync.Mutex
	byKey map[[sha256.Size]byte]*list.Element
	lru   *list.List // of *tlsClient, most recently used first
	max   int
}

type tlsClient struct {
	key    [sha256.Size]byte
	client *http.Client
}

func newTransports(base *http.Transport, shared *http.Client, size int) *transports {
	return &transports{base: base, shared: shared, redirects: shared.CheckRedirect,
		byKey: map[[sha256.Size]byte]*list.Element{}, lru: list.New(), max: size}
}

// errTLSSettings means stored TLS settings no longer make a TLS
// configuration (they were checked when set, so only a row changed
// around the API gets here).
var errTLSSettings = errors.New("the subscription's TLS settings cannot be used")

// client returns the client for settings c (nil: the shared one).
func (t *transports) client(c *domain.ClientTLS) (*http.Client, error) {
	if c == nil {
		return t.shared, nil
	}
	h := sha256.New()
	for _, part := range []string{c.Certificate, c.Key, c.CABundle} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])

	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*tlsClient).client, nil
	}
	cfg, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	tr := t.base.Clone()
	tr.TLSClientConfig = cfg
	cl := &http.Client{Transport: tr, CheckRedirect: t.redirects}
	t.byKey[key] = t.lru.PushFront(&tlsClient{key: key, client: cl})
	for t.lru.Len() > t.max {
		old := t.lru.Remove(t.lru.Back()).(*tlsClient)
		delete(t.byKey, old.key)
		// Requests in flight on it finish; its idle connections go now.
		old.client.Transport.(*http.Transport).CloseIdleConnections()
	}
	return cl, nil
}

// len reports how many TLS transports are kept.
func (t *transports) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// tlsConfig builds the TLS configuration of settings c.
func tlsConfig(c *domain.ClientTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.Certificate != "" {
		pair, err := tls.X509KeyPair([]byte(c.Certificate), []byte(c.Key))
		if err != nil {
			return nil, errTLSSettings
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if c.CABundle != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CABundle)) {
			return nil, errTLSSettings
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
