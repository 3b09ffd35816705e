package testkit

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// ConnectProxy is an HTTP CONNECT proxy for one test: it tunnels to the
// host and port asked for, refuses (403) what its options say, and
// records every CONNECT it is asked for.
type ConnectProxy struct {
	// URL is the proxy's address, http://127.0.0.1:port.
	URL  string
	opts ProxyOptions

	mu     sync.Mutex
	asked  []string
	header []http.Header
}

// ProxyOptions tune a ConnectProxy.
type ProxyOptions struct {
	// Refuse, if set, decides which host:port targets get a 403.
	Refuse func(target string) bool
	// Hosts, if set, resolves names as /etc/hosts would, before DNS.
	Hosts map[string]string
}

// NewConnectProxy starts a proxy that lives as long as the test.
func NewConnectProxy(t testing.TB, opts ProxyOptions) *ConnectProxy {
	t.Helper()
	p := &ConnectProxy{opts: opts}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p.URL = "http://" + ln.Addr().String()
	return p
}

// Asked returns the targets of every CONNECT so far, in order, and their
// request headers.
func (p *ConnectProxy) Asked() ([]string, []http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...), append([]http.Header(nil), p.header...)
}

// ServeHTTP answers CONNECT by tunnelling, and anything else with 405:
// a client that sends plain requests to it is not using CONNECT.
func (p *ConnectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.asked = append(p.asked, r.Host)
	p.header = append(p.header, r.Header.Clone())
	p.mu.Unlock()
	if p.opts.Refuse != nil && p.opts.Refuse(r.Host) {
		http.Error(w, "destination not allowed", http.StatusForbidden)
		return
	}
	target := r.Host
	if host, port, err := net.SplitHostPort(target); err == nil && p.opts.Hosts[host] != "" {
		target = net.JoinHostPort(p.opts.Hosts[host], port)
	}
	upstream, err := (&net.Dialer{}).DialContext(r.Context(), "tcp", target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		upstream.Close()
		return
	}
	go func() {
		_, _ = io.Copy(upstream, buf)
		if tc, ok := upstream.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(conn, upstream)
	conn.Close()
	upstream.Close()
}
