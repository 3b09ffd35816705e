package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// seedAttempts posts event e, delivered to subscriptions a and b, and
// gives its deliveries 200 and 100 attempts straight in SQL, started in
// threes at the same microsecond so that ids break ties, each with a
// 1 KiB response as a failing receiver's might be.
func seedAttempts(t *testing.T, b *bundle) {
	t.Helper()
	for _, id := range []string{"a", "b"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"https://example.com/`+id+`","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	r := b.do(t, "POST", "/events", `{"id":"e","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	_, err := b.db.Pool.Exec(context.Background(), `
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_class, error, response_body)
		SELECT d.id, n, timestamptz '2026-03-01 12:00:00Z' + (n / 3) * interval '1 second', 10, 503, 'http_status', 'HTTP 503', repeat('x', 1024)
		FROM deliveries d, generate_series(1, 200) n
		WHERE d.event_id = 'e' AND (d.subscription_id = 'a' OR n <= 100)`)
	require.NoError(t, err)
}

// attemptIDs are the ids of e's attempts in the order the listing should
// give them, read straight from the tables.
func attemptIDs(t *testing.T, b *bundle, subscriptionID string, newest bool) []int64 {
	t.Helper()
	order := "a.started_at, a.id"
	if newest {
		order = "a.started_at DESC, a.id DESC"
	}
	rows, err := b.db.Pool.Query(context.Background(), `SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
		WHERE d.event_id = 'e' AND ($1 = '' OR d.subscription_id = $1) ORDER BY `+order, subscriptionID)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// walkAttempts follows next_cursor from path to the last page, checking
// that no page is larger than limit, and returns every attempt's id.
func walkAttempts(t *testing.T, b *bundle, path string, limit int) []int64 {
	t.Helper()
	var ids []int64
	next := path
	for range 1000 {
		r := b.do(t, "GET", next, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		data := r.body["data"].([]any)
		require.LessOrEqual(t, len(data), limit)
		for _, a := range data {
			ids = append(ids, int64(a.(map[string]any)["id"].(float64)))
		}
		cursor, _ := r.body["next_cursor"].(string)
		if cursor == "" {
			return ids
		}
		require.Len(t, data, limit, "only the last page is short")
		next = path + "&after=" + url.QueryEscape(cursor)
	}
	t.Fatal("too many pages")
	return nil
}

// TestAttemptsArePaged: an event's attempts come in keyset pages, each
// attempt exactly once, oldest or newest first, for the whole event or
// one subscription's delivery; pages hold 50 by default and 250 at most.
func TestAttemptsArePaged(t *testing.T) {
	b := setup(t)
	seedAttempts(t, b)

	tests := []struct {
		query        string
		limit        int
		subscription string
		newest       bool
	}{
		{"limit=7", 7, "", false},
		{"order=newest&limit=13", 13, "", true},
		{"subscription_id=a&order=newest&limit=9", 9, "a", true},
		{"subscription_id=b&limit=1", 1, "b", false},
		{"subscription_id=b&order=oldest&limit=100", 100, "b", false},
		{"limit=250", 250, "", false},
		{"order=newest", 50, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			want := attemptIDs(t, b, tt.subscription, tt.newest)
			require.Equal(t, want, walkAttempts(t, b, "/events/e/attempts?"+tt.query, tt.limit))
		})
	}

	r := b.do(t, "GET", "/events/e/attempts", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Len(t, r.body["data"], 50, "a page holds 50 attempts unless asked otherwise")
	require.NotEmpty(t, r.body["next_cursor"])
	require.Less(t, len(r.raw), 100<<10, "the first page is bounded, whatever the event's history")
	first := r.body["data"].([]any)[0].(map[string]any)
	require.Equal(t, "a", first["subscription_id"], "oldest first unless asked otherwise")
	require.EqualValues(t, 1, first["number"])
	require.EqualValues(t, 503, first["status_code"])
	require.Equal(t, "http_status", first["error_class"])

	r = b.do(t, "GET", "/events/e/attempts?subscription_id=nobody", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Empty(t, r.body["data"], "no delivery to that subscription, no attempts")
	for _, path := range []string{"/events/nope/attempts", "/events/nope/attempts?subscription_id=a&order=newest"} {
		require.Equal(t, http.StatusNotFound, b.do(t, "GET", path, "").status, path)
	}
}

// TestBadAttemptsQueryIsAPreciseProblem: a limit beyond 250, an unknown
// order and anything but an attempt's cursor are 422s naming the
// parameter.
func TestBadAttemptsQueryIsAPreciseProblem(t *testing.T) {
	b := setup(t)
	seedAttempts(t, b)
	cursor := func(s string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(s))) }
	tests := []struct{ name, query, location string }{
		{"limit above 250", "limit=251", "query.limit"},
		{"limit zero", "limit=0", "query.limit"},
		{"unknown order", "order=sideways", "query.order"},
		{"bad subscription id", "subscription_id=a%20b", "query.subscription_id"},
		{"cursor not base64", "after=not*a*cursor", "query.after"},
		{"cursor of an event listing", "after=" + cursor("1700000000000000:evt_1"), "query.after"},
		{"cursor id zero", "after=" + cursor("1700000000000000:0"), "query.after"},
		{"cursor id negative", "after=" + cursor("1700000000000000:-5"), "query.after"},
		{"cursor id with a leading zero", "after=" + cursor("1700000000000000:05"), "query.after"},
		{"cursor id beyond int64", "after=" + cursor("1700000000000000:9223372036854775808"), "query.after"},
		{"cursor before year 0", "after=" + cursor("-300000000000000000:5"), "query.after"},
		{"cursor at the least int64", "after=" + cursor("-9223372036854775808:5"), "query.after"},
		{"cursor too long", "after=" + strings.Repeat("A", 401), "query.after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, "GET", "/events/e/attempts?"+tt.query, "")
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.Contains(t, r.locations(), tt.location, r.raw)
		})
	}
}

// TestEventDeliveriesArePaged: GET /events/{id} shows the first 50 of an
// event's deliveries and a cursor for the rest, which GET
// /events/{id}/deliveries pages; the event's status still comes from all
// of them.
func TestEventDeliveriesArePaged(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO subscriptions (id, url, event_types, secret)
		SELECT 'sub_' || lpad(i::text, 3, '0'), 'https://example.com/', '{order.*}', 'whsec_x' FROM generate_series(1, 120) i`)
	require.NoError(t, err)
	r := b.do(t, "POST", "/events", `{"id":"e","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	_, err = b.db.Pool.Exec(ctx, `UPDATE deliveries SET status = CASE WHEN subscription_id = 'sub_120' THEN 'failed' ELSE 'delivered' END`)
	require.NoError(t, err)

	r = b.do(t, "GET", "/events/e", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "failed", r.body["status"], "derived from every delivery, not only those shown")
	var shown []string
	for _, d := range r.body["deliveries"].([]any) {
		shown = append(shown, d.(map[string]any)["subscription_id"].(string))
	}
	require.Len(t, shown, 50)
	require.Equal(t, "sub_001", shown[0])
	require.Equal(t, "sub_050", r.body["deliveries_next_cursor"])

	all := walk(t, b, "/events/e/deliveries?limit=50", "subscription_id")
	require.Len(t, all, 120)
	for i, id := range all {
		require.Equal(t, fmt.Sprintf("sub_%03d", i+1), id)
	}
	rest := b.do(t, "GET", "/events/e/deliveries?after="+r.body["deliveries_next_cursor"].(string), "")
	require.Equal(t, http.StatusOK, rest.status, rest.raw)
	require.Equal(t, "sub_051", dataIDs(t, rest, "subscription_id")[0], "deliveries_next_cursor continues where GET /events/{id} stopped")
	page := b.do(t, "GET", "/events/e/deliveries?limit=250", "")
	require.Len(t, page.body["data"], 120)
	require.Nil(t, page.body["next_cursor"])

	r = b.do(t, "POST", "/events", `{"id":"lonely","type":"user.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "GET", "/events/lonely", "")
	require.Equal(t, "unmatched", r.body["status"])
	require.Equal(t, []any{}, r.body["deliveries"])
	require.Nil(t, r.body["deliveries_next_cursor"])
	r = b.do(t, "GET", "/events/lonely/deliveries", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []any{}, r.body["data"])

	for _, tt := range []struct {
		path     string
		status   int
		location string
	}{
		{"/events/nope/deliveries", http.StatusNotFound, ""},
		{"/events/e/deliveries?limit=251", http.StatusUnprocessableEntity, "query.limit"},
		{"/events/e/deliveries?after=..", http.StatusUnprocessableEntity, "query.after"},
		{"/events/e/deliveries?after=a%20b", http.StatusUnprocessableEntity, "query.after"},
	} {
		r := b.do(t, "GET", tt.path, "")
		require.Equal(t, tt.status, r.status, r.raw)
		if tt.location != "" {
			require.Contains(t, r.locations(), tt.location, r.raw)
		}
	}
}

// TestAttemptDurationsKeepMicroseconds lists an attempt that took less
// than a millisecond, as one on a local network does, and one recorded
// before durations were kept in microseconds.
func TestAttemptDurationsKeepMicroseconds(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"a","url":"https://example.com/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"e","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	_, err := b.db.Pool.Exec(context.Background(), `
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, duration_us, status_code)
		SELECT id, 1, now(), 0, 312, 204 FROM deliveries WHERE event_id = 'e'
		UNION ALL SELECT id, 2, now(), 7, NULL, 204 FROM deliveries WHERE event_id = 'e'`)
	require.NoError(t, err)
	r = b.do(t, "GET", "/events/e/attempts", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	data := r.body["data"].([]any)
	require.Len(t, data, 2)
	require.Equal(t, 0.312, data[0].(map[string]any)["duration_ms"], "a fraction of a millisecond, not 0")
	require.Equal(t, 7.0, data[1].(map[string]any)["duration_ms"], "an older attempt's milliseconds")
}

// TestAttemptHeaders: an attempt answers with the request headers Dispatch
// sent, derived from the event and the subscription around the values it
// stored, and the receiver's response headers as stored, a cookie's value
// masked; an attempt that stored none has neither.
func TestAttemptHeaders(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"a","url":"https://example.com/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"e","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	_, err := b.db.Pool.Exec(context.Background(), `
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, request_headers, response_headers)
		SELECT id, 1, now(), 3, 200, E'User-Agent: Dispatch/1.0\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,abc',
		       E'Content-Type: text/html\nSet-Cookie: sid=********\nX-Note: <b>hi</b>' FROM deliveries WHERE event_id = 'e'
		UNION ALL SELECT id, 2, now(), 3, NULL, '', '' FROM deliveries WHERE event_id = 'e'`)
	require.NoError(t, err)
	r = b.do(t, "GET", "/events/e/attempts", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	data := r.body["data"].([]any)
	require.Len(t, data, 2)
	header := func(name, value string) map[string]any { return map[string]any{"name": name, "value": value} }
	require.Equal(t, []any{
		header("Content-Type", "application/json"),
		header("User-Agent", "Dispatch/1.0"),
		header("X-Dispatch-Event-ID", "e"),
		header("X-Dispatch-Event-Type", "order.created"),
		header("X-Dispatch-Subscription-ID", "a"),
		header("X-Dispatch-Timestamp", "1614265330"),
		header("X-Dispatch-Signature", "v1,abc"),
		header("webhook-id", "e"),
		header("webhook-timestamp", "1614265330"),
		header("webhook-signature", "v1,abc"),
	}, data[0].(map[string]any)["request_headers"])
	cookie := header("Set-Cookie", "sid=********")
	cookie["masked"] = true
	require.Equal(t, []any{header("Content-Type", "text/html"), cookie, header("X-Note", "<b>hi</b>")},
		data[0].(map[string]any)["response_headers"])
	require.NotContains(t, data[1], "request_headers")
	require.NotContains(t, data[1], "response_headers")
	require.NotContains(t, r.raw, "whsec_", "never a secret")
}
