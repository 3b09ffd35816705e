package retry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/retry"
)

func TestDelayIsFullJitterUnderTheCeiling(t *testing.T) {
	t.Parallel()
	p := retry.Policy{MaxAttempts: 10, BaseDelay: 5 * time.Second, MaxDelay: time.Minute}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		n := i + 1
		if c := p.Ceiling(n); c != w {
			t.Fatalf("Ceiling(%d) = %v, want %v", n, c, w)
		}
		var sum time.Duration
		for range 2000 {
			d := p.Delay(n)
			if d <= 0 || d > p.Ceiling(n) {
				t.Fatalf("Delay(%d) = %v outside (0, %v]", n, d, p.Ceiling(n))
			}
			sum += d
		}
		// The mean of a uniform draw is half the ceiling; 2000 draws land within 10%.
		if mean := sum / 2000; mean < p.Ceiling(n)*4/10 || mean > p.Ceiling(n)*6/10 {
			t.Fatalf("mean Delay(%d) = %v, want about %v", n, mean, p.Ceiling(n)/2)
		}
	}
}

func TestDefaultScheduleSpansAboutADay(t *testing.T) {
	t.Parallel()
	p := retry.Default()
	var expected time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		expected += p.Ceiling(n) / 2
	}
	if expected < 18*time.Hour || expected > 30*time.Hour {
		t.Fatalf("default retries span %v on average, want about a day", expected)
	}
	if p.Ceiling(1) > 5*time.Second {
		t.Fatalf("first retry may wait %v; it must come within seconds", p.Ceiling(1))
	}
}

func TestAfter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	p := retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Hour}
	tests := []struct {
		name       string
		n          int
		retryAfter time.Duration
		retry      bool
		min, max   time.Duration
	}{
		{"backoff", 1, 0, true, 0, time.Second},
		{"retry-after honoured", 1, 30 * time.Second, true, 30 * time.Second, 30 * time.Second},
		{"retry-after capped", 1, 48 * time.Hour, true, time.Hour, time.Hour},
		{"retry-after floored", 1, time.Millisecond, true, time.Second, time.Second},
		{"last attempt", 3, 0, false, 0, 0},
	}
	for _, tt := range tests {
		d := p.After(tt.n, now, tt.retryAfter)
		if d.Retry != tt.retry {
			t.Fatalf("%s: Retry = %v", tt.name, d.Retry)
		}
		if !d.Retry {
			continue
		}
		if wait := d.At.Sub(now); wait < tt.min || wait > tt.max || wait <= 0 {
			t.Fatalf("%s: wait %v outside [%v, %v]", tt.name, wait, tt.min, tt.max)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retry.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "Wed, 21 Oct 2015 07:28:00 GMT", "", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		if d := retry.ParseRetryAfter(v, now); d < 0 {
			t.Fatalf("negative delay %v for %q", d, v)
		}
	})
}
