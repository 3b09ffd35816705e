package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// seedSearch stores three subscriptions' worth of events through the API,
// then gives their deliveries statuses, one event a minute from base.
func seedSearch(t *testing.T, b *bundle, base time.Time) {
	t.Helper()
	for _, s := range []string{
		`{"id":"orders","url":"https://example.com/o","event_types":["order.*"]}`,
		`{"id":"invoices","url":"https://example.com/i","event_types":["invoice.*"]}`,
		`{"id":"quiet","url":"https://example.com/q","event_types":["never.*"]}`,
	} {
		r := b.do(t, "POST", "/subscriptions", s)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	events := []struct{ id, typ, status string }{
		{"e1", "order.created", "delivered"},
		{"e2", "invoice.paid", "failed"},
		{"e3", "order.paid", "retrying"},
		{"e4", "user.signup", ""},
		{"e5", "order.created", "pending"},
	}
	ctx := context.Background()
	for i, e := range events {
		r := b.do(t, "POST", "/events", fmt.Sprintf(`{"id":%q,"type":%q,"data":{}}`, e.id, e.typ))
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		at := base.Add(time.Duration(i) * time.Minute)
		_, err := b.db.Pool.Exec(ctx, `UPDATE events SET received_at = $2 WHERE id = $1`, e.id, at)
		require.NoError(t, err)
		_, err = b.db.Pool.Exec(ctx, `UPDATE deliveries SET status = $2, created_at = $3 WHERE event_id = $1`, e.id, e.status, at)
		require.NoError(t, err)
	}
}

func dataIDs(t *testing.T, r response, key string) []string {
	t.Helper()
	data, ok := r.body["data"].([]any)
	require.True(t, ok, r.raw)
	ids := []string{}
	for _, d := range data {
		ids = append(ids, d.(map[string]any)[key].(string))
	}
	return ids
}

// alphabet is base64url's, in the order of the values its characters stand for.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// walk follows next_cursor from path to the last page and returns every id.
func walk(t *testing.T, b *bundle, path, key string) []string {
	t.Helper()
	var ids []string
	next := path
	for range 20 {
		r := b.do(t, "GET", next, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		ids = append(ids, dataIDs(t, r, key)...)
		cursor, _ := r.body["next_cursor"].(string)
		if cursor == "" {
			return ids
		}
		next = path + "&after=" + url.QueryEscape(cursor)
	}
	t.Fatal("too many pages")
	return nil
}

func TestListEventsOverHTTP(t *testing.T) {
	b := setup(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seedSearch(t, b, base)

	r := b.do(t, "GET", "/events", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []string{"e5", "e4", "e3", "e2", "e1"}, dataIDs(t, r, "id"))
	require.Nil(t, r.body["next_cursor"], "one page holds them all")
	first := r.body["data"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"id": "e5", "type": "order.created", "received_at": "2026-03-01T12:04:00Z", "status": "pending", "tenant_id": "default"}, first,
		"a listing leaves the payload out")

	tests := []struct {
		query string
		want  []string
	}{
		{"limit=2", []string{"e5", "e4", "e3", "e2", "e1"}},
		{"type=order.*&limit=1", []string{"e5", "e3", "e1"}},
		{"type=order.created", []string{"e5", "e1"}},
		{"status=unmatched", []string{"e4"}},
		{"status=failed", []string{"e2"}},
		{"status=retrying", []string{"e3"}},
		{"subscription_id=orders&limit=2", []string{"e5", "e3", "e1"}},
		{"subscription_id=quiet", nil},
		{"since=2026-03-01T12:01:00Z&until=2026-03-01T12:03:00Z", []string{"e3", "e2"}},
		{"since=2026-03-01T13:01:00%2B01:00", []string{"e5", "e4", "e3", "e2"}},
		{"type=order.*&status=pending&subscription_id=orders", []string{"e5"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, walk(t, b, "/events?"+tt.query, "id"))
		})
	}
}

func TestListDeliveriesOverHTTP(t *testing.T) {
	b := setup(t)
	seedSearch(t, b, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))

	r := b.do(t, "GET", "/subscriptions/orders/deliveries", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []string{"e5", "e3", "e1"}, dataIDs(t, r, "event_id"))
	d := r.body["data"].([]any)[1].(map[string]any)
	require.Equal(t, "order.paid", d["event_type"])
	require.Equal(t, "orders", d["subscription_id"])
	require.Equal(t, "retrying", d["status"])
	require.Equal(t, "2026-03-01T12:02:00Z", d["created_at"])

	tests := []struct {
		path string
		want []string
	}{
		{"/subscriptions/orders/deliveries?limit=1", []string{"e5", "e3", "e1"}},
		{"/subscriptions/orders/deliveries?status=delivered", []string{"e1"}},
		{"/subscriptions/orders/deliveries?since=2026-03-01T12:01:00Z&limit=1", []string{"e5", "e3"}},
		{"/subscriptions/orders/deliveries?until=2026-03-01T12:04:00Z&status=pending", nil},
		{"/subscriptions/quiet/deliveries?limit=5", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, walk(t, b, tt.path, "event_id"))
		})
	}

	r = b.do(t, "GET", "/subscriptions/nope/deliveries", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
}

func TestStatsOverHTTP(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"all","url":"https://example.com/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	for i := range 3 {
		r = b.do(t, "POST", "/events", fmt.Sprintf(`{"id":"s%d","type":"x.y","data":{}}`, i))
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL WHERE event_id = 's0'`)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, `UPDATE deliveries SET next_attempt_at = now() - interval '30 seconds' WHERE event_id = 's1'`)
	require.NoError(t, err)

	r = b.do(t, "GET", "/stats", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "1h", r.body["window"], "the default window")
	require.Equal(t, 3.0, r.body["events_received"])
	require.Equal(t, 1.0, r.body["deliveries_delivered"])
	require.Equal(t, 0.0, r.body["deliveries_retrying"])
	require.Equal(t, 0.0, r.body["deliveries_failed"])
	require.Equal(t, 2.0, r.body["backlog_due"], "two pending deliveries wait")
	require.InDelta(t, 30, r.body["backlog_oldest_due_seconds"], 5)
	from, err := time.Parse(time.RFC3339Nano, r.body["from"].(string))
	require.NoError(t, err)
	to, err := time.Parse(time.RFC3339Nano, r.body["to"].(string))
	require.NoError(t, err)
	require.Equal(t, time.Hour, to.Sub(from))

	r = b.do(t, "GET", "/stats?window=168h", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "168h", r.body["window"], "the window as the request wrote it")
	r = b.do(t, "GET", "/stats?window=15m", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "15m", r.body["window"], "the window as the request wrote it")

	r = b.do(t, "GET", "/stats/minutes?window=15m", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	minutes := r.body["data"].([]any)
	require.Len(t, minutes, 16, "every minute of the window and the current one")
	var received float64
	for _, m := range minutes {
		received += m.(map[string]any)["events_received"].(float64)
	}
	require.Equal(t, 3.0, received)
}

func TestBadSearchInputIsAPreciseProblem(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s","url":"https://example.com/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	cursor := func(s string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(s))) }
	// sloppy encodes s with the unused low bits of its last character set,
	// which a lenient base64 decoder ignores.
	sloppy := func(s string) string {
		enc := []byte(base64.RawURLEncoding.EncodeToString([]byte(s)))
		require.NotZero(t, len(s)%3, "s must leave unused bits")
		last := strings.IndexByte(alphabet, enc[len(enc)-1])
		enc[len(enc)-1] = alphabet[last|1]
		return url.QueryEscape(string(enc))
	}

	tests := []struct {
		name, path, location string
	}{
		{"cursor not base64", "/events?after=not*a*cursor", "query.after"},
		{"cursor NUL byte", "/events?after=%00", "query.after"},
		{"cursor invalid UTF-8", "/events?after=%FF%FE", "query.after"},
		{"cursor NUL inside", "/events?after=" + cursor("1700000000000000:evt\x00"), "query.after"},
		{"cursor invalid UTF-8 inside", "/events?after=" + cursor("1700000000000000:\xff"), "query.after"},
		{"cursor without time", "/events?after=" + cursor("soon:evt_1"), "query.after"},
		{"cursor without id", "/events?after=" + cursor("1700000000000000"), "query.after"},
		{"cursor too long", "/events?after=" + strings.Repeat("A", 401), "query.after"},
		{"cursor before year 0", "/events?after=" + cursor("-300000000000000000:evt_1"), "query.after"},
		{"cursor after year 9999", "/events?after=" + cursor("253402300800000000:evt_1"), "query.after"},
		{"cursor at the least int64", "/events?after=" + cursor("-9223372036854775808:evt_1"), "query.after"},
		{"cursor at the greatest int64", "/events?after=" + cursor("9223372036854775807:evt_1"), "query.after"},
		{"cursor time with a sign", "/events?after=" + cursor("+1700000000000000:evt_1"), "query.after"},
		{"cursor time with a leading zero", "/events?after=" + cursor("01700000000000000:evt_1"), "query.after"},
		{"cursor in another base64 spelling", "/events?after=" + sloppy("1700000000000000:evt_1"), "query.after"},
		{"cursor id ..", "/events?after=" + cursor("1700000000000000:.."), "query.after"},
		{"deliveries cursor", "/subscriptions/s/deliveries?after=%00", "query.after"},
		{"deliveries cursor before year 0", "/subscriptions/s/deliveries?after=" + cursor("-300000000000000000:evt_1"), "query.after"},
		{"deliveries cursor at the least int64", "/subscriptions/s/deliveries?after=" + cursor("-9223372036854775808:evt_1"), "query.after"},
		{"subscriptions cursor not an id", "/subscriptions?after=a%20b", "query.after"},
		{"subscriptions cursor ..", "/subscriptions?after=..", "query.after"},
		{"limit zero", "/events?limit=0", "query.limit"},
		{"limit too high", "/events?limit=251", "query.limit"},
		{"limit not a number", "/events?limit=ten", "query.limit"},
		{"unknown status", "/events?status=lost", "query.status"},
		{"bad pattern", "/events?type=order.*.x", "query.type"},
		{"bad type", "/events?type=order%20created", "query.type"},
		{"type NUL", "/events?type=order%00", "query.type"},
		{"type too long", "/events?type=" + strings.Repeat("a", 258), "query.type"},
		{"bad subscription id", "/events?subscription_id=a%20b", "query.subscription_id"},
		{"since not a time", "/events?since=yesterday", "query.since"},
		{"until before since", "/events?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "query.until"},
		{"delivery status", "/subscriptions/s/deliveries?status=unmatched", "query.status"},
		{"delivery until", "/subscriptions/s/deliveries?since=2026-03-02T00:00:00Z&until=2026-03-02T00:00:00Z", "query.until"},
		{"window not a duration", "/stats?window=an%20hour", "query.window"},
		{"window too short", "/stats?window=10s", "query.window"},
		{"window too long", "/stats?window=169h", "query.window"},
		{"minutes over a day", "/stats/minutes?window=25h", "query.window"},
		{"window negative", "/stats?window=-1h", "query.window"},
		{"window too long a string", "/stats?window=" + strings.Repeat("1", 33) + "s", "query.window"},
		{"stats tenant", "/stats?tenant_id=a%20b", "query.tenant_id"},
		{"minutes tenant", "/stats/minutes?tenant_id=" + strings.Repeat("a", 256), "query.tenant_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, "GET", tt.path, "")
			require.True(t, r.status == http.StatusUnprocessableEntity || r.status == http.StatusBadRequest, "status %d: %s", r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			errs, _ := r.body["errors"].([]any)
			require.NotEmpty(t, errs, r.raw)
			require.Equal(t, tt.location, errs[0].(map[string]any)["location"], r.raw)
		})
	}
}
