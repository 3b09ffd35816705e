package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrBlocked is wrapped by every refusal of an address, so callers can tell
// a policy decision from a network failure with errors.Is.
var ErrBlocked = errors.New("destination address not allowed")

// BlockedError says which kind of address was refused. It names the range,
// never the address: an attempt's error is shown to API callers, and the
// address a name resolves to inside this network is nobody's business.
type BlockedError struct {
	// Kind describes the range, e.g. "loopback" or "private".
	Kind string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s: it is a %s address (DELIVERY_ALLOW_CIDRS can open it)", ErrBlocked, e.Kind)
}

// Unwrap makes errors.Is(err, ErrBlocked) hold.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

type blockedRange struct {
	prefix netip.Prefix
	kind   string
}

func r(cidr, kind string) blockedRange {
	return blockedRange{netip.MustParsePrefix(cidr), kind}
}

// blocked lists every range that is not a public unicast destination:
// the IANA IPv4 and IPv6 special-purpose registries, plus the IPv6 forms
// that embed or translate to an IPv4 address (NAT64, 6to4, Teredo,
// IPv4-compatible, SIIT), which could otherwise carry a request to an
// internal IPv4 host through a gateway. IPv4-mapped IPv6 is not listed: it
// is judged as the IPv4 address it maps.
var blocked = []blockedRange{
	r("0.0.0.0/8", `"this network"`),
	r("10.0.0.0/8", "private"),
	r("100.64.0.0/10", "carrier-grade NAT"),
	r("127.0.0.0/8", "loopback"),
	r("169.254.0.0/16", "link-local (cloud metadata)"),
	r("172.16.0.0/12", "private"),
	r("192.0.0.0/24", "IETF protocol assignment"),
	r("192.0.2.0/24", "documentation"),
	r("192.88.99.0/24", "6to4 relay"),
	r("192.168.0.0/16", "private"),
	r("198.18.0.0/15", "benchmarking"),
	r("198.51.100.0/24", "documentation"),
	r("203.0.113.0/24", "documentation"),
	r("224.0.0.0/4", "multicast"),
	r("240.0.0.0/4", "reserved"), // includes 255.255.255.255, broadcast

	r("::/96", "IPv4-compatible IPv6"), // includes :: and ::1, judged below by their own names
	r("::ffff:0:0:0/96", "IPv4-translated IPv6"),
	r("64:ff9b::/96", "NAT64"),
	r("64:ff9b:1::/48", "NAT64"),
	r("100::/64", "discard-only"),
	r("2001::/23", "IETF protocol assignment"), // includes Teredo, 2001::/32
	r("2001:db8::/32", "documentation"),
	r("2002::/16", "6to4"),
	r("3fff::/20", "documentation"),
	r("5f00::/16", "segment routing"),
	r("fc00::/7", "unique local (private)"),
	r("fe80::/10", "link-local"),
	r("fec0::/10", "site-local"),
	r("ff00::/8", "multicast"),
}

// Policy decides which addresses requests may reach: public unicast
// addresses always, internal ones only where an allowed prefix covers them.
// The zero Policy allows no internal address.
type Policy struct {
	allow []netip.Prefix
}

// NewPolicy returns a Policy that also allows the given prefixes (for
// receivers on a private network, development and tests).
func NewPolicy(allow []netip.Prefix) Policy {
	norm := make([]netip.Prefix, 0, len(allow))
	for _, p := range allow {
		// An allowed ::ffff:a.b.c.d/n means the IPv4 range, as addresses
		// are judged unmapped.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		norm = append(norm, p.Masked())
	}
	return Policy{allow: norm}
}

// Check returns nil when addr may be reached, or a *BlockedError.
func (p Policy) Check(addr netip.Addr) error {
	// A zone only picks the interface; the address is what is reached.
	// Prefix.Contains is false for every zoned address, so judging one
	// with its zone would let it pass every list.
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return &BlockedError{Kind: "invalid"}
	}
	for _, a := range p.allow {
		if a.Contains(addr) {
			return nil
		}
	}
	switch {
	case addr.IsUnspecified():
		return &BlockedError{Kind: "unspecified"}
	case addr.IsLoopback():
		return &BlockedError{Kind: "loopback"}
	}
	for _, b := range blocked {
		if b.prefix.Contains(addr) {
			return &BlockedError{Kind: b.kind}
		}
	}
	return nil
}

// Control is a net.Dialer Control hook: it judges the address actually
// being connected to, after DNS resolution, so a name that resolves (or
// rebinds) to a refused address is refused too.
func (p Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Kind: "unparsable"}
	}
	return p.Check(ap.Addr())
}
