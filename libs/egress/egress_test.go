package egress_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/egress"
)

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	allowLoopback := egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	tests := []struct {
		addr    string
		blocked bool
		policy  egress.Policy
	}{
		{"93.184.216.34", false, egress.Policy{}},
		{"2606:2800:220:1:248:1893:25c8:1946", false, egress.Policy{}},
		{"127.0.0.1", true, egress.Policy{}},
		{"127.255.255.254", true, egress.Policy{}},
		{"0.0.0.0", true, egress.Policy{}},
		{"10.1.2.3", true, egress.Policy{}},
		{"172.16.0.1", true, egress.Policy{}},
		{"192.168.1.1", true, egress.Policy{}},
		{"169.254.169.254", true, egress.Policy{}},
		{"100.100.100.200", true, egress.Policy{}}, // a cloud's metadata, in CGNAT space
		{"224.0.0.1", true, egress.Policy{}},
		{"255.255.255.255", true, egress.Policy{}},
		{"::", true, egress.Policy{}},
		{"::1", true, egress.Policy{}},
		{"::1%lo", true, egress.Policy{}},                               // a zone must not hide the address
		{"fe80::1%eth0", true, egress.Policy{}},                         // link-local with zone
		{"::ffff:127.0.0.1", true, egress.Policy{}},                     // IPv4-mapped
		{"::ffff:169.254.169.254", true, egress.Policy{}},               // IPv4-mapped metadata
		{"::127.0.0.1", true, egress.Policy{}},                          // IPv4-compatible
		{"::ffff:0:7f00:1", true, egress.Policy{}},                      // IPv4-translated
		{"64:ff9b::7f00:1", true, egress.Policy{}},                      // NAT64 to 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true, egress.Policy{}},                   // NAT64 to metadata
		{"64:ff9b:1::1", true, egress.Policy{}},                         // local-use NAT64
		{"2002:7f00:1::1", true, egress.Policy{}},                       // 6to4 of 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true, egress.Policy{}}, // Teredo
		{"fd00:ec2::254", true, egress.Policy{}},                        // a cloud's IPv6 metadata
		{"fc00::1", true, egress.Policy{}},
		{"fec0::1", true, egress.Policy{}},
		{"ff02::1", true, egress.Policy{}},
		{"2001:db8::1", true, egress.Policy{}},
		{"127.0.0.1", false, allowLoopback},
		{"::1", false, allowLoopback},
		{"::1%lo", false, allowLoopback},
		{"::ffff:127.0.0.1", false, allowLoopback},
		{"10.0.0.1", true, allowLoopback},
		{"10.0.0.1", false, egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")})},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(netip.MustParseAddr(tt.addr))
			if got := err != nil; got != tt.blocked {
				t.Fatalf("Check(%s) = %v, want blocked %v", tt.addr, err, tt.blocked)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, egress.ErrBlocked) {
				t.Fatalf("error %v is not ErrBlocked", err)
			}
			if strings.Contains(err.Error(), strings.Split(tt.addr, "%")[0]) {
				t.Fatalf("error %q names the address", err)
			}
		})
	}
}

func TestControlJudgesTheDialledAddress(t *testing.T) {
	t.Parallel()
	p := egress.Policy{}
	for _, address := range []string{"127.0.0.1:80", "[::1%lo]:8081", "[::ffff:10.0.0.1]:443", "[64:ff9b::7f00:1]:80", "nonsense"} {
		if err := p.Control("tcp", address, nil); !errors.Is(err, egress.ErrBlocked) {
			t.Errorf("Control(%q) = %v, want blocked", address, err)
		}
	}
	if err := p.Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("a public address was refused: %v", err)
	}
}

// TestDialRefusesZonedLoopback dials through a real dialer: the zone of
// [::1%lo] once let it pass both the block and the allow list.
func TestDialRefusesZonedLoopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { ln.Close() })
	d := net.Dialer{Control: egress.Policy{}.Control}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, host := range []string{"::1%lo", "127.0.0.1", "localhost"} {
		conn, err := d.Dial("tcp", net.JoinHostPort(host, port))
		if err == nil {
			conn.Close()
			t.Fatalf("dialled %s", host)
		}
		if !errors.Is(err, egress.ErrBlocked) {
			t.Fatalf("dial %s: %v, want blocked", host, err)
		}
	}
}

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		addr string // "" for a name
		err  bool
	}{
		{"example.com", "", false},
		{"example.com.", "", false},
		{"a1.example", "", false},
		{"0x.example", "", false},
		{"127.0.0.1", "127.0.0.1", false},
		{"127.0.0.1.", "127.0.0.1", false},
		{"127.1", "127.0.0.1", false},
		{"127.0.1", "127.0.0.1", false},
		{"2130706433", "127.0.0.1", false},
		{"0x7f000001", "127.0.0.1", false},
		{"0X7F.1", "127.0.0.1", false},
		{"0x7f.0x0.0x0.0x1", "127.0.0.1", false},
		{"0177.0.0.1", "127.0.0.1", false},
		{"017700000001", "127.0.0.1", false},
		{"0251.0376.0251.0376", "169.254.169.254", false},
		{"0xa9fea9fe", "169.254.169.254", false},
		{"0", "0.0.0.0", false},
		{"0x", "0.0.0.0", false},
		{"::1", "::1", false},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1", false},
		{"::ffff:7f00:1", "::ffff:127.0.0.1", false},
		{"::1%lo", "", true},
		{"fe80::1%25eth0", "", true},
		{"127.0.0.1%lo", "", true},
		{"256.0.0.1", "", true},
		{"1.2.3.4.5", "", true},
		{"4294967296", "", true},
		{"08", "", true},
		{"example.123", "", true},
		{"１２７.０.０.１", "", true}, // full-width digits
		{"exämple.com", "", true},
		{"", "", true},
		{":::", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			addr, isAddr, err := egress.ParseHost(tt.host)
			if (err != nil) != tt.err {
				t.Fatalf("ParseHost(%q) error %v, want error %v", tt.host, err, tt.err)
			}
			if tt.err {
				return
			}
			if got := tt.addr != ""; isAddr != got {
				t.Fatalf("ParseHost(%q) isAddr %v, want %v", tt.host, isAddr, got)
			}
			if isAddr && addr != netip.MustParseAddr(tt.addr) {
				t.Fatalf("ParseHost(%q) = %s, want %s", tt.host, addr, tt.addr)
			}
		})
	}
}

// fakeResolver answers from a table: the API's check must judge what a
// name resolves to, and this machine's DNS knows no such names.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	res := fakeResolver{
		"public.example":   {netip.MustParseAddr("93.184.216.34")},
		"rebind.example":   {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")},
		"metadata.example": {netip.MustParseAddr("::ffff:169.254.169.254")},
	}
	tests := []struct {
		url     string
		blocked bool
	}{
		{"https://public.example/hook", false},
		{"https://unknown.example/hook", false}, // not resolvable now: judged at dial time
		{"https://93.184.216.34:8443/", false},
		{"https://rebind.example/hook", true},
		{"http://metadata.example/latest", true},
		{"http://127.0.0.1:8080/", true},
		{"http://[::1]:8081/metrics", true},
		{"http://[::1%25lo]:8081/metrics", true},
		{"http://[fe80::1%25eth0]/", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"http://[::ffff:a9fe:a9fe]/", true},
		{"http://[64:ff9b::a9fe:a9fe]/", true},
		{"http://[::127.0.0.1]/", true},
		{"http://2130706433/", true},
		{"http://0x7f.1/", true},
		{"http://0177.0.0.1/", true},
		{"http://127.1/", true},
		{"http://%31%32%37.0.0.1/", true},
		{"http://169.254.169.254./", true},
		{"http://example.123/", true},
		{"http://public.example:0/", true},
		{"http://1572395042/", true}, // a public address, but the worker would look it up as a name
		{"http://93.184.216.34./", true},
		{"http://public.example:65536/", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := egress.Policy{}.CheckURL(context.Background(), res, tt.url)
			if got := err != nil; got != tt.blocked {
				t.Fatalf("CheckURL(%q) = %v, want refused %v", tt.url, err, tt.blocked)
			}
		})
	}
}

func TestDestination(t *testing.T) {
	t.Parallel()
	same := [][]string{
		{"https://Example.com/a", "https://example.com:443/b?x", "https://example.com.:443/", "HTTPS://EXAMPLE.COM"},
		{"http://127.0.0.1:8080/", "http://127.1:8080/x", "http://2130706433:8080/", "http://[::ffff:127.0.0.1]:8080/", "http://127.0.0.1:08080/"},
		{"http://[::1]/", "http://[::1%25lo]:80/"},
	}
	for _, group := range same {
		want := egress.Destination(group[0])
		for _, u := range group[1:] {
			if got := egress.Destination(u); got != want {
				t.Errorf("Destination(%q) = %q, want %q as for %q", u, got, want, group[0])
			}
		}
	}
	if a, b := egress.Destination("http://example.com/"), egress.Destination("https://example.com/"); a == b {
		t.Errorf("http and https share destination %q", a)
	}
	if a, b := egress.Destination("http://example.com:8080/"), egress.Destination("http://example.com:8081/"); a == b {
		t.Errorf("two ports share destination %q", a)
	}
}

// FuzzCheckURL: whatever the spelling, a URL whose host the dialer would
// reach as an internal address is refused when it is set, and neither
// check panics.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1/", "http://[::1%25lo]:8081/", "http://0x7f.1/", "http://2130706433/",
		"http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::1]/", "https://example.com/", "http://0177.0.0.01/", "http://1.2.3.4.5/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p := egress.Policy{}
		err := p.CheckURL(context.Background(), fakeResolver{}, raw)
		_ = egress.Destination(raw)
		u, perr := url.Parse(raw)
		if perr != nil || err != nil {
			return
		}
		// What a dialer would connect to for an address host: it must be allowed.
		host := u.Hostname()
		if a, aerr := netip.ParseAddr(host); aerr == nil {
			if p.Check(a) != nil {
				t.Fatalf("CheckURL passed %q but its address %s is blocked", raw, a)
			}
		}
		if a, ok, herr := egress.ParseHost(host); herr == nil && ok && p.Check(a) != nil {
			t.Fatalf("CheckURL passed %q but ParseHost reads %s", raw, a)
		}
	})
}

// TestCheckHost pins the judgement of a host reached through a proxy: an
// address as it is, a name by every address it resolves to, and a name
// that does not resolve refused as a DNS error.
func TestCheckHost(t *testing.T) {
	t.Parallel()
	res := fakeResolver{
		"public.example": {netip.MustParseAddr("93.184.216.34")},
		"rebind.example": {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")},
	}
	tests := []struct {
		host    string
		blocked bool
		dns     bool
	}{
		{"public.example", false, false},
		{"93.184.216.34", false, false},
		{"rebind.example", true, false},
		{"127.0.0.1", true, false},
		{"::1", true, false},
		{"0x7f.1", true, false},
		{"example.123", true, false},
		{"unknown.example", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			err := egress.Policy{}.CheckHost(context.Background(), res, tt.host)
			var dnsErr *net.DNSError
			if errors.Is(err, egress.ErrBlocked) != tt.blocked || errors.As(err, &dnsErr) != tt.dns {
				t.Fatalf("CheckHost(%q) = %v, want blocked %v, DNS error %v", tt.host, err, tt.blocked, tt.dns)
			}
		})
	}
}

func TestParseProxyURL(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"http://proxy.internal:4750":      true,
		"http://u:p@10.0.0.5:3128/":       true,
		"https://proxy.internal:4750":     false,
		"socks5://proxy.internal:1080":    false,
		"http://proxy.internal":           false,
		"http://proxy.internal:4750/path": false,
		"proxy.internal:4750":             false,
	} {
		if _, err := egress.ParseProxyURL(raw); (err == nil) != ok {
			t.Errorf("ParseProxyURL(%q) = %v, want accepted %v", raw, err, ok)
		}
	}
}
