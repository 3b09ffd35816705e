package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

func TestAssess(t *testing.T) {
	t.Parallel()
	const after = 100 * time.Hour
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	other := ago(time.Minute)
	tests := []struct {
		name  string
		h     store.SubscriptionHealth
		after time.Duration
		want  plan
	}{
		{"healthy", store.SubscriptionHealth{State: domain.SubscriptionActive}, after, plan{}},
		{"failing under half", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(49 * time.Hour)}, after, plan{}},
		{"failing half", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(50 * time.Hour)}, after,
			plan{thresholds: []int{50}, level: 50, since: ago(50 * time.Hour)}},
		{"50 reported, under 70", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(69 * time.Hour), AlertSince: ago(69 * time.Hour), AlertLevel: 50}, after, plan{}},
		{"50 reported, 70 crossed", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(70 * time.Hour), AlertSince: ago(70 * time.Hour), AlertLevel: 50}, after,
			plan{thresholds: []int{70}, level: 70, since: ago(70 * time.Hour)}},
		{"several crossed since the last pass are each reported", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(95 * time.Hour)}, after,
			plan{thresholds: []int{50, 70, 90}, level: 90, since: ago(95 * time.Hour)}},
		{"all of it: disabled", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(after), AlertSince: ago(after), AlertLevel: 90}, after,
			plan{disable: true, level: domain.OpDisabledLevel, since: ago(after), reason: "every attempt failed for 100h0m0s since 2026-04-26T20:00:00Z (AUTO_DISABLE_AFTER)"}},
		{"auto-disable off: nothing", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: ago(1000 * time.Hour)}, 0, plan{}},
		{"recovered after a report", store.SubscriptionHealth{State: domain.SubscriptionActive, AlertSince: ago(60 * time.Hour), AlertLevel: 50}, after,
			plan{recovered: true}},
		{"recovered and failing again: recovered first", store.SubscriptionHealth{State: domain.SubscriptionActive, FailingSince: other, AlertSince: ago(60 * time.Hour), AlertLevel: 50}, after,
			plan{recovered: true}},
		{"disabled by 410, not reported", store.SubscriptionHealth{State: domain.SubscriptionDisabled, StateReason: "endpoint answered 410 Gone", FailingSince: other}, after,
			plan{disabled: true, reason: "endpoint answered 410 Gone", level: domain.OpDisabledLevel, since: other}},
		{"disabled by 410, auto-disable off: still reported", store.SubscriptionHealth{State: domain.SubscriptionDisabled, StateReason: "gone"}, 0,
			plan{disabled: true, reason: "gone", level: domain.OpDisabledLevel}},
		{"disabled and reported", store.SubscriptionHealth{State: domain.SubscriptionDisabled, AlertLevel: domain.OpDisabledLevel}, after, plan{}},
		{"paused: not attempted, nothing to say", store.SubscriptionHealth{State: domain.SubscriptionPaused, FailingSince: ago(1000 * time.Hour)}, after, plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, assess(tt.h, now, tt.after))
		})
	}
}
