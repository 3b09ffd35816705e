package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up the addresses of a name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolveTimeout bounds the lookup CheckURL makes: a name whose DNS is slow
// or down is judged again at dial time anyway.
const resolveTimeout = 2 * time.Second

// CheckURL judges a destination URL when it is set. The host is read in
// every spelling (see ParseHost); an address is judged as it is, a name by
// every address it resolves to now. A name that does not resolve passes:
// the receiver may not exist yet, and the dial-time check judges whatever
// it resolves to later. The error's message is fit to show to the caller.
func (p Policy) CheckURL(ctx context.Context, res Resolver, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be between 1 and 65535")
		}
	}
	addr, isAddr, err := ParseHost(u.Hostname())
	if err != nil {
		return err
	}
	if isAddr {
		if err := p.Check(addr); err != nil {
			return err
		}
		// 127.1 or 0x7f.0.0.1 reach the same host, but Go's resolver (and
		// so the worker) reads them as names; ask for the one spelling
		// every client understands.
		if addr.Is4() && u.Hostname() != addr.String() {
			return fmt.Errorf("write the IPv4 address as %s", addr)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := res.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return fmt.Errorf("host resolves to an address deliveries may not reach: %w", err)
		}
	}
	return nil
}

// Destination names the server a URL points at, as scheme://host:port with
// the host in its canonical form (lower case, no trailing dot, an address
// in its standard spelling) and the port explicit. URLs that reach the
// same server by different spellings share one Destination, so limits
// kept per destination cannot be multiplied by respelling the URL.
func Destination(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // the zone picks an interface, not another server
	}
	if addr, ok, err := ParseHost(host); err == nil && ok {
		host = addr.Unmap().String()
	}
	port := 80
	if scheme == "https" {
		port = 443
	}
	if n, err := strconv.Atoi(u.Port()); err == nil {
		port = n
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// CheckHost judges a host a delivery is about to reach through an egress
// proxy, which will resolve and connect on its own: an address as it is,
// a name by every address it resolves to now. Unlike CheckURL, a name
// that does not resolve is an error (the *net.DNSError), as there is
// nothing to judge and the proxy would resolve it unjudged. A refusal is
// a *BlockedError.
func (p Policy) CheckHost(ctx context.Context, res Resolver, host string) error {
	addr, isAddr, err := ParseHost(host)
	if err != nil {
		return &BlockedError{Kind: "unparsable"}
	}
	if isAddr {
		return p.Check(addr)
	}
	addrs, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return err
		}
	}
	return nil
}

// ParseProxyURL checks an egress proxy's URL (DELIVERY_PROXY_URL): an http:// URL with a host and
// a port, optionally a user and password, and nothing else.
func ParseProxyURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("is not a URL")
	case u.Scheme != "http":
		return nil, errors.New("must be an http:// URL (the proxy is spoken to in plain HTTP; the deliveries it carries keep their own TLS)")
	case u.Hostname() == "" || u.Port() == "":
		return nil, errors.New("must name the proxy's host and port, as in http://proxy.internal:4750")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must have no path, query or fragment")
	}
	return u, nil
}
