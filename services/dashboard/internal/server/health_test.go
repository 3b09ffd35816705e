package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// healthAPI answers the listings and one subscription with their circuits
// (only when asked with circuit=true, as the API does) and the settings
// in force; everything else as the fake API.
type healthAPI struct {
	*fakeAPI
	opened, lastFailure time.Time
}

func (h healthAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	withCircuit := func(sub map[string]any, state string, failures int, opened, last *time.Time) map[string]any {
		if r.URL.Query().Get("circuit") != "true" && r.URL.Path == "/subscriptions" {
			return sub
		}
		sub["circuit_state"], sub["failures_last_hour"] = state, failures
		if opened != nil {
			sub["circuit_opened_at"] = *opened
		}
		if last != nil {
			sub["last_failure_at"] = *last
		}
		return sub
	}
	sub := func(id string) map[string]any {
		return map[string]any{"id": id, "tenant_id": "default", "url": "https://example.com/" + id, "event_types": []string{"*"}, "state": "active",
			"created_at": time.Now().Add(-48 * time.Hour), "updated_at": time.Now()}
	}
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/subscriptions") {
		h.fakeAPI.ServeHTTP(w, r)
		return
	}
	h.fakeAPI.mu.Lock()
	h.fakeAPI.gets = append(h.fakeAPI.gets, r.URL.RequestURI())
	h.fakeAPI.mu.Unlock()
	switch r.URL.Path {
	case "/subscriptions/broken/deliveries":
		writeJSON(w, 200, map[string]any{"data": []any{}})
	case "/subscriptions":
		writeJSON(w, 200, map[string]any{"data": []any{
			withCircuit(sub("broken"), "open", 7, &h.opened, &h.lastFailure),
			withCircuit(sub("fine"), "closed", 0, nil, nil),
		}})
	case "/subscriptions/broken":
		s := withCircuit(sub("broken"), "half_open", 7, &h.opened, &h.lastFailure)
		s["max_attempts"] = 3
		s["effective"] = map[string]any{"max_attempts": 3, "retry_base_delay_ms": 5000, "retry_max_delay_ms": 86400000,
			"timeout_ms": 9000, "rate_limit_per_second": 100, "max_concurrency": 100}
		writeJSON(w, 200, s)
	default:
		writeProblem(w, 404, "not found")
	}
}

// TestPagesShowCircuitsAndFailures: the subscriptions list, the
// overview's attention table and a subscription's page show, for each
// subscription, since when its circuit has been open and its failures of
// the last hour with the last one's time, from the listing asked with
// circuit=true (the overview asks for no subscription one by one); a
// subscription's page shows the value in force of each setting it leaves
// unset, not the words "the worker's default".
func TestPagesShowCircuitsAndFailures(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}}}
	now := time.Now()
	h := healthAPI{fakeAPI: api, opened: now.Add(-5 * time.Minute), lastFailure: now.Add(-2 * time.Minute)}
	b := setupWith(t, api, h)
	b.signIn(t, "dsp_admin")

	tests := []struct {
		page string
		// row selects the broken subscription's part of the page.
		row string
	}{
		{"/subscriptions", `[data-testid="subscription-row"][data-id="broken"]`},
		{"/", `[data-testid="subscription-row"][data-id="broken"]`},
		{"/subscriptions/broken", `[data-testid="subscription-facts"]`},
	}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			api.forgetAsked()
			resp, doc := b.get(t, tt.page)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s answered %d: %s", tt.page, resp.StatusCode, doc.Text())
			}
			row := doc.Find(tt.row)
			if row.Length() != 1 {
				t.Fatalf("no row for the broken subscription: %s", doc.Find("main").Text())
			}
			since := row.Find(`[data-testid="circuit-since"] time`)
			if got := since.AttrOr("datetime", ""); got != h.opened.UTC().Format(time.RFC3339Nano) {
				t.Errorf("circuit open since %q, want %s", got, h.opened.UTC())
			}
			if got := strings.TrimSpace(since.Text()); got != "5 min ago" {
				t.Errorf("open since %q", got)
			}
			failures := strings.Join(strings.Fields(row.Find(`[data-testid="failures"]`).First().Text()), " ")
			want := "7 failures in the last hour last failure 2 min ago"
			if tt.page == "/" {
				// The attention table shows the newest failing delivery
				// beside it instead.
				want = "7 failures in the last hour"
			}
			if failures != want {
				t.Errorf("failures read %q, want %q", failures, want)
			}
			if got := row.Find(`[data-testid="last-failure-at"] time`).AttrOr("datetime", ""); tt.page != "/" && got != h.lastFailure.UTC().Format(time.RFC3339Nano) {
				t.Errorf("last failure %q", got)
			}
		})
	}

	_, doc := b.get(t, "/subscriptions")
	if got := strings.TrimSpace(doc.Find(`[data-id="fine"] [data-testid="failures"]`).Text()); got != "no failure in the last hour" {
		t.Errorf("a subscription without failures reads %q", got)
	}
	if doc.Find(`[data-id="fine"] [data-testid="circuit"]`).Length() != 0 {
		t.Error("a closed circuit is not flagged")
	}
	if strings.Contains(doc.Find("thead").Text(), "created") {
		t.Error("the list shows when subscriptions were made, not their health")
	}

	api.forgetAsked()
	b.get(t, "/")
	for _, asked := range api.asked("/subscriptions/broken") {
		t.Errorf("the overview asked for a subscription by itself: %v", asked)
	}
	if asked := api.asked("/subscriptions"); len(asked) != 1 || asked[0].Get("circuit") != "true" {
		t.Errorf("the overview's listing: %v, want one with circuit=true", asked)
	}

	_, doc = b.get(t, "/subscriptions/broken")
	for setting, want := range map[string]string{
		"max attempts":    "3",
		"timeout":         "9s (its tenant's default, else the workers')",
		"rate limit":      "100/s (its tenant's default, else the workers')",
		"retry max delay": "24h0m0s (its tenant's default, else the workers')",
	} {
		if got := strings.TrimSpace(testid(doc, "setting-"+setting).Text()); got != want {
			t.Errorf("%s reads %q, want %q", setting, got, want)
		}
	}
}
