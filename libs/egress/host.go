package egress

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Errors of ParseHost. Each is a reason fit to show to the API caller.
var (
	errZone       = errors.New("must not carry an IPv6 zone")
	errNonASCII   = errors.New("host must be ASCII (write international names in punycode)")
	errBadNumeric = errors.New("host ends in a number but is not an IPv4 address")
	errEmptyHost  = errors.New("host must not be empty")
)

// ParseHost reads a URL's host (as url.URL.Hostname returns it) the way
// resolvers and browsers would. When the host is an address in any
// spelling — dotted IPv4, the short, decimal, octal and hex forms that
// inet_aton accepts (127.1, 2130706433, 0177.0.0.1, 0x7f.1), IPv6 with or
// without an embedded IPv4 — it returns that address and true. A name
// returns false. A zoned IPv6 address, a non-ASCII host and a host that
// ends in a number without being an IPv4 address are errors: none is a
// name DNS could answer, and each is a known way around address checks.
func ParseHost(host string) (netip.Addr, bool, error) {
	if host == "" {
		return netip.Addr{}, false, errEmptyHost
	}
	for i := range len(host) {
		if host[i] >= 0x80 {
			return netip.Addr{}, false, errNonASCII
		}
	}
	if strings.Contains(host, ":") {
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, false, errors.New("host is not a valid IPv6 address")
		}
		if addr.Zone() != "" {
			return netip.Addr{}, false, errZone
		}
		return addr, true, nil
	}
	if strings.Contains(host, "%") {
		return netip.Addr{}, false, errZone
	}
	if !endsInNumber(host) {
		return netip.Addr{}, false, nil
	}
	addr, ok := parseIPv4(host)
	if !ok {
		return netip.Addr{}, false, errBadNumeric
	}
	return addr, true, nil
}

// endsInNumber follows the WHATWG URL standard: a host whose last label
// (ignoring one trailing dot) is a decimal, octal or 0x-hex number is an
// IPv4 address or invalid, never a name.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if labels[len(labels)-1] == "" {
		if len(labels) == 1 {
			return false
		}
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseNumber(last)
	return ok
}

// parseIPv4 reads one to four dot-separated numbers as inet_aton does: the
// last number fills the remaining bytes.
func parseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, part := range parts {
		n, ok := parseNumber(part)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v = v<<8 | n
			continue
		}
		rest := uint(8 * (4 - i))
		if n >= 1<<rest {
			return netip.Addr{}, false
		}
		v = v<<rest | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseNumber reads one IPv4 part: 0x-prefixed hex (possibly empty, which
// is zero), 0-prefixed octal, or decimal.
func parseNumber(s string) (uint64, bool) {
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true
		}
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	case s == "":
		return 0, false
	}
	// With an explicit base, ParseUint refuses signs and underscores.
	n, err := strconv.ParseUint(s, base, 32)
	return n, err == nil
}
