package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// minStatsWindow is the shortest window the stats operations count.
const minStatsWindow = time.Minute

// parseWindow reads a stats window of at least minStatsWindow and at most
// longest, or answers the 422 naming query.window.
func parseWindow(raw string, longest time.Duration) (time.Duration, error) {
	window, err := time.ParseDuration(raw)
	if err != nil {
		return 0, queryProblem("window", "must be a duration such as 15m, 1h or 24h")
	}
	if window < minStatsWindow || window > longest {
		return 0, queryProblem("window", fmt.Sprintf("must be between %s and %s", minStatsWindow, longest))
	}
	return window, nil
}

type statsInput struct {
	Window   string `query:"window" default:"1h" maxLength:"32" example:"15m" doc:"How far back to count: a Go duration such as 15m, 1h or 24h, from 1m to 168h."`
	TenantID string `query:"tenant_id" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Count only this tenant: its events, and the deliveries to its subscriptions. A key bound to a tenant counts its own without it, and gets zeros for another tenant's."`
}

// StatsBody is activity over a window that ends now, and the backlog now.
type StatsBody struct {
	Window              string    `json:"window" example:"1h" doc:"The window counted, as the request wrote it (the default: 1h)."`
	From                time.Time `json:"from" doc:"Start of the window (the database's clock)."`
	To                  time.Time `json:"to" doc:"End of the window: now."`
	EventsReceived      int64     `json:"events_received" doc:"Events received within the window."`
	DeliveriesDelivered int64     `json:"deliveries_delivered" doc:"Deliveries that became delivered within the window (see the spec: counted per minute)."`
	DeliveriesRetrying  int64     `json:"deliveries_retrying" doc:"Deliveries that entered retrying within the window and still held it when their minute was rolled up."`
	DeliveriesFailed    int64     `json:"deliveries_failed" doc:"Deliveries that failed for good within the window."`
	BacklogDue          int64     `json:"backlog_due" doc:"Open deliveries (pending, processing, retrying) due now and waiting for a worker."`
	BacklogOldestDueSec float64   `json:"backlog_oldest_due_seconds" doc:"How long the longest-waiting of them has been due; 0 without a backlog."`
}

type statsOutput struct {
	Body StatsBody
}

func (s *Server) registerStats(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "get-stats",
		Method:      http.MethodGet,
		Path:        "/stats",
		Summary:     "Activity and backlog",
		Description: "Counts over a recent window and the deliveries waiting now, cheap enough for a dashboard to poll every few seconds. A key bound to no tenant counts every tenant, or the one that tenant_id names; a key bound to a tenant counts its own. A tenant's figures are its events (an event sent to every tenant counts only for the whole deployment) and the deliveries to its subscriptions (those of events sent to every tenant included).",
		Tags:        []string{"Stats"},
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.stats)
}

func (s *Server) stats(ctx context.Context, in *statsInput) (*statsOutput, error) {
	window, err := parseWindow(in.Window, store.MaxStatsWindow)
	if err != nil {
		return nil, err
	}
	scope, ok := narrowed(ctx, in.TenantID)
	if !ok {
		// Another tenant's, asked by a key bound to a tenant: nothing, as
		// its listings find nothing of that tenant's.
		to := s.clock.Now()
		return &statsOutput{Body: StatsBody{Window: in.Window, From: to.Add(-window), To: to}}, nil
	}
	st, err := s.store.Stats(ctx, scope, window)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	out := &statsOutput{Body: StatsBody{
		Window: in.Window, From: st.From, To: st.To, EventsReceived: st.EventsReceived,
		DeliveriesDelivered: st.Delivered, DeliveriesRetrying: st.Retrying, DeliveriesFailed: st.Failed,
		BacklogDue: st.BacklogDue,
	}}
	if st.OldestDue != nil {
		out.Body.BacklogOldestDueSec = max(0, st.To.Sub(*st.OldestDue).Seconds())
	}
	return out, nil
}

type timelineInput struct {
	Window   string `query:"window" default:"1h" maxLength:"32" example:"1h" doc:"How far back: a Go duration from 1m to 24h."`
	TenantID string `query:"tenant_id" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Count only this tenant, as GET /stats does."`
}

// MinuteBody is one minute's activity.
type MinuteBody struct {
	Minute              time.Time `json:"minute" doc:"The minute's start."`
	EventsReceived      int64     `json:"events_received"`
	DeliveriesDelivered int64     `json:"deliveries_delivered"`
	DeliveriesRetrying  int64     `json:"deliveries_retrying"`
	DeliveriesFailed    int64     `json:"deliveries_failed"`
}

type timelineOutput struct {
	Body struct {
		Data []MinuteBody `json:"data" doc:"Every minute of the window, oldest first, zeros included."`
	}
}

func (s *Server) registerTimeline(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "get-stats-minutes",
		Method:      http.MethodGet,
		Path:        "/stats/minutes",
		Summary:     "Activity minute by minute",
		Description: "The counts of GET /stats for each minute of a window of up to a day, for charts: every tenant's, the one tenant_id names, or, for a key bound to a tenant, its own.",
		Tags:        []string{"Stats"},
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.timeline)
}

func (s *Server) timeline(ctx context.Context, in *timelineInput) (*timelineOutput, error) {
	window, err := parseWindow(in.Window, store.MaxTimelineWindow)
	if err != nil {
		return nil, err
	}
	var minutes []store.MinuteActivity
	if scope, ok := narrowed(ctx, in.TenantID); ok {
		if minutes, err = s.store.Timeline(ctx, scope, window); err != nil {
			return nil, s.problem(ctx, err, "")
		}
	} else {
		minutes = store.NoActivity(window)
	}
	out := &timelineOutput{}
	out.Body.Data = make([]MinuteBody, len(minutes))
	for i, m := range minutes {
		out.Body.Data[i] = MinuteBody{Minute: m.Minute, EventsReceived: m.EventsReceived,
			DeliveriesDelivered: m.Delivered, DeliveriesRetrying: m.Retrying, DeliveriesFailed: m.Failed}
	}
	return out, nil
}
