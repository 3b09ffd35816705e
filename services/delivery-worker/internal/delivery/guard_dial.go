package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrAddressNotAllowed is returned when a destination resolves to an
// address deliveries may not reach (loopback, private, link-local such as
// cloud metadata, and the like) and no allowed range covers it.
var ErrAddressNotAllowed = errors.New("destination address not allowed")

// blockedRanges are refused unless allowed explicitly: a webhook URL must
// not let a tenant reach Dispatch's own network.
var blockedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this" network
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
}

// addressPolicy decides which resolved addresses deliveries may connect to.
type addressPolicy struct {
	allow []netip.Prefix
}

func (p addressPolicy) permits(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, a := range p.allow {
		if a.Contains(addr) {
			return true
		}
	}
	for _, b := range blockedRanges {
		if b.Contains(addr) {
			return false
		}
	}
	return true
}

// control checks the address actually dialled — after DNS resolution, so a
// name that resolves (or rebinds) to a blocked address is refused too.
func (p addressPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrAddressNotAllowed, address)
	}
	if !p.permits(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrAddressNotAllowed, ap.Addr())
	}
	return nil
}
