package domain_test

import (
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestOperationalEventID(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	base := domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_1", "50", domain.PeriodKey(since))
	if err := domain.ValidateEventID(base); err != nil {
		t.Fatalf("id %q is not a valid event id: %v", base, err)
	}
	tests := []struct {
		name string
		id   string
		same bool
	}{
		{"same report", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_1", "50", domain.PeriodKey(since)), true},
		{"same period read back from the database (microseconds)", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_1", "50", domain.PeriodKey(since.Truncate(time.Microsecond))), true},
		{"another threshold", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_1", "70", domain.PeriodKey(since)), false},
		{"another period", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_1", "50", domain.PeriodKey(since.Add(time.Second))), false},
		{"another subscription", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_2", "50", domain.PeriodKey(since)), false},
		{"another type", domain.OperationalEventID(domain.OpSubscriptionRecovered, "sub_1", "50", domain.PeriodKey(since)), false},
		{"parts are not concatenated", domain.OperationalEventID(domain.OpSubscriptionFailing, "sub_15", "0", domain.PeriodKey(since)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if (tt.id == base) != tt.same {
				t.Fatalf("id %q against %q: same = %v, want %v", tt.id, base, tt.id == base, tt.same)
			}
		})
	}
}

func TestIsOperationalType(t *testing.T) {
	t.Parallel()
	for _, typ := range domain.OperationalTypes {
		if !domain.IsOperationalType(typ) {
			t.Errorf("%s is not operational", typ)
		}
	}
	for _, typ := range []string{"dispatch.test", "order.created", "dispatch.subscriptions", "dispatch"} {
		if domain.IsOperationalType(typ) {
			t.Errorf("%s is operational", typ)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://example.com/hooks", "https://example.com/hooks"},
		{"https://user:pass@example.com/hooks?token=abc#frag", "https://example.com/hooks"},
		{"http://127.0.0.1:8080/x?", "http://127.0.0.1:8080/x"},
	}
	for _, tt := range tests {
		if got := domain.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
