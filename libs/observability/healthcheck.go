package observability

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// HealthcheckTimeout bounds one health check, connection and answer.
const HealthcheckTimeout = 3 * time.Second

// HealthcheckCommand is every service's "healthcheck" subcommand, for
// container health checks in images without a shell or curl: it asks the
// service listening on addr (its ADDR, such as ":8080") for /readyz and
// returns the exit code, 0 when the service is ready and 1, with the
// reason on stderr, when it is not.
func HealthcheckCommand(addr string) int {
	ctx, cancel := context.WithTimeout(context.Background(), HealthcheckTimeout)
	defer cancel()
	if err := Healthcheck(ctx, addr); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// Healthcheck asks the service listening on addr whether it is ready: nil
// when its /readyz answers 200. A listen address without a host, or with
// an unspecified one (":8080", "0.0.0.0:8080", "[::]:8080"), is asked on
// 127.0.0.1. The request never goes through a proxy.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("ADDR %q is not host:port: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
