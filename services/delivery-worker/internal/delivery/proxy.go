package delivery

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/egress"
)

// connectDialer reaches every destination through an HTTP CONNECT proxy
// (DELIVERY_PROXY_URL, ADR 13): for http and https URLs alike, the
// worker dials the proxy, asks it to CONNECT to the destination's host
// and port by name, and speaks HTTP, or TLS then HTTP, through the
// tunnel. Before asking, it judges the name by every address it resolves
// to under the address policy; the proxy resolves the name again and is
// trusted to enforce its own policy on what it connects to.
type connectDialer struct {
	// proxy is the proxy's host:port; auth, if set, its
	// Proxy-Authorization value (from the URL's user information).
	proxy string
	auth  string
	// dial reaches the proxy, whose address is the operator's choice and
	// is not judged by the policy.
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	policy   egress.Policy
	resolver egress.Resolver
}

func newConnectDialer(proxy *url.URL, policy egress.Policy, resolver egress.Resolver) *connectDialer {
	d := &connectDialer{
		proxy:    proxy.Host,
		dial:     (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		policy:   policy,
		resolver: resolver,
	}
	if proxy.User != nil {
		pass, _ := proxy.User.Password()
		d.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(proxy.User.Username()+":"+pass))
	}
	return d
}

// ProxyRefusedError is the proxy's answer to a CONNECT other than 200.
type ProxyRefusedError struct {
	Status string
}

func (e *ProxyRefusedError) Error() string {
	return "the egress proxy answered CONNECT with " + e.Status
}

// Unwrap makes a 403, the proxy's policy refusing the destination, an
// egress.ErrBlocked like the worker's own refusals: retrying cannot help.
func (e *ProxyRefusedError) Unwrap() error {
	if len(e.Status) >= 3 && e.Status[:3] == "403" {
		return egress.ErrBlocked
	}
	return nil
}

// DialContext opens a tunnel to addr (host:port) through the proxy.
func (d *connectDialer) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := d.policy.CheckHost(ctx, d.resolver, host); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	conn, err := d.dial(ctx, "tcp", d.proxy)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	// The handshake with the proxy is bounded by the attempt's context:
	// a proxy that never answers must not hold the attempt past it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if d.auth != "" {
		req.Header.Set("Proxy-Authorization", d.auth)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, &ProxyRefusedError{Status: resp.Status}
	}
	if !stop() {
		// The context ended as the tunnel opened: its deadline is set.
		conn.Close()
		return nil, ctx.Err()
	}
	if br.Buffered() > 0 {
		// Bytes the destination sent before the client spoke are the
		// tunnel's; none are expected, but none may be lost.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn reads first what a bufio.Reader already took from Conn.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
