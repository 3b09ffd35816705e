package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// loopback lets tests deliver to receivers on 127.0.0.1.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestAddressPolicy(t *testing.T) {
	t.Parallel()
	strict := addressPolicy{}
	open := addressPolicy{allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	tests := []struct {
		addr          string
		strict, allow bool
	}{
		{"93.184.216.34", true, true},
		{"2606:2800:220:1:248:1893:25c8:1946", true, true},
		{"127.0.0.1", false, false},
		{"::1", false, false},
		{"::ffff:127.0.0.1", false, false}, // IPv4-mapped loopback
		{"10.1.2.3", false, true},
		{"10.2.0.1", false, false},
		{"172.16.0.1", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false}, // cloud metadata
		{"100.64.0.1", false, false},
		{"0.0.0.0", false, false},
		{"fd00::1", false, false},
		{"fe80::1", false, false},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		require.Equal(t, tt.strict, strict.permits(a), "strict %s", tt.addr)
		require.Equal(t, tt.allow, open.permits(a), "allow-list %s", tt.addr)
	}
}

func TestSendRefusesInternalAddressesByDefault(t *testing.T) {
	t.Parallel()
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	t.Cleanup(srv.Close)
	a := NewSender("test", nil).Send(context.Background(), job(srv.URL, signing.GenerateSecret()), 5*time.Second).Attempt
	require.Equal(t, domain.ErrorBlocked, a.ErrorClass, a.Error)
	require.False(t, hit, "no request may reach the internal address")
	// A name that resolves to loopback is refused the same way.
	a = NewSender("test", nil).Send(context.Background(), job("http://localhost:"+srv.URL[len("http://127.0.0.1:"):], signing.GenerateSecret()), 5*time.Second).Attempt
	require.Equal(t, domain.ErrorBlocked, a.ErrorClass, a.Error)
}
