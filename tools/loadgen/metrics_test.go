package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// goClientMetrics is the start of what the services' /metrics answer
// (promhttp.Handler with the default registry).
const goClientMetrics = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 23
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.5731072e+07
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 1.269481472e+09
`

func TestFindGauge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		text       string
		want       float64
		wantLabels map[string]string
		wantErr    bool
	}{
		{"Go client", goClientMetrics, 25731072, nil, false},
		{"labels", `process_resident_memory_bytes{service="ingest-api",instance="api-1"} 1024` + "\n", 1024, map[string]string{"service": "ingest-api", "instance": "api-1"}, false},
		{"labels with spaces and a trailing comma", `process_resident_memory_bytes{ service = "w" , } 2048`, 2048, map[string]string{"service": "w"}, false},
		{"escaped label value", `process_resident_memory_bytes{service="a\"b\\c\nd, {e}"} 1`, 1, map[string]string{"service": "a\"b\\c\nd, {e}"}, false},
		{"timestamp", "process_resident_memory_bytes 4096 1700000000000\n", 4096, nil, false},
		{"prefix of another name is not it", "process_resident_memory_bytes_max 9\nprocess_resident_memory_bytes 8\n", 8, nil, false},
		{"first of several samples", "process_resident_memory_bytes{instance=\"a\"} 1\nprocess_resident_memory_bytes{instance=\"b\"} 2\n", 1, map[string]string{"instance": "a"}, false},
		{"bad lines are skipped", "garbage\nprocess_resident_memory_bytes{service=\"x 1\nprocess_resident_memory_bytes 3\n", 3, nil, false},
		{"missing", "# HELP process_resident_memory_bytes only help\ngo_goroutines 3\n", 0, nil, true},
		{"not a number", "process_resident_memory_bytes lots\n", 0, nil, true},
		{"empty", "", 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, labels, err := findGauge(strings.NewReader(tt.text), rssMetric)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
			if len(labels) != len(tt.wantLabels) || (len(labels) > 0 && !maps.Equal(labels, tt.wantLabels)) {
				t.Errorf("labels = %v, want %v", labels, tt.wantLabels)
			}
		})
	}
}

func TestParseTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []target
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"default", defaultMetrics, []target{
			{"ingest-api", "http://127.0.0.1:8080"}, {"delivery-worker", "http://127.0.0.1:8081"}, {"retry-scheduler", "http://127.0.0.1:8082"},
		}, false},
		{"plain URLs, spaces, trailing slash", " http://a:1/ , https://b:2", []target{{"", "http://a:1"}, {"", "https://b:2"}}, false},
		{"a URL with = in its path is not a name", "http://a:1/x=y", []target{{"", "http://a:1/x=y"}}, false},
		{"not a URL", "127.0.0.1:8080", nil, true},
		{"no host", "http://", nil, true},
		{"named, not a URL", "api=localhost", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTargets(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("target %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestServiceName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		t      target
		labels map[string]string
		want   string
	}{
		{"given name first", target{"api", "http://a"}, map[string]string{"service": "s", "instance": "i"}, "api"},
		{"service label", target{"", "http://a"}, map[string]string{"service": "s", "instance": "i"}, "s"},
		{"instance label", target{"", "http://a"}, map[string]string{"instance": "i"}, "i"},
		{"URL", target{"", "http://a"}, nil, "http://a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := serviceName(tt.t, tt.labels); got != tt.want {
				t.Errorf("serviceName = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWatchRSS scrapes a service whose memory rises and falls, one that
// labels itself, and one that is down.
func TestWatchRSS(t *testing.T) {
	t.Parallel()
	// A service's scrape is recorded before the next one is asked for:
	// the signals below fire once every figure the test checks is in.
	var scrapes, labels atomic.Int64
	risen, labelledSeen := make(chan struct{}), make(chan struct{})
	rises := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := scrapes.Add(1)
		if n == 5 {
			close(risen)
		}
		rss := []string{"1048576", "3145728", "2097152"}[min(n-1, 2)]
		_, _ = io.WriteString(w, "process_resident_memory_bytes "+rss+"\n")
	}))
	defer rises.Close()
	labelled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if labels.Add(1) == 2 {
			close(labelledSeen)
		}
		_, _ = io.WriteString(w, `process_resident_memory_bytes{service="worker"} 1024`+"\n")
	}))
	defer labelled.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var log strings.Builder
	reported := make(chan struct{}, 1)
	w := watchRSS(ctx, &http.Client{Timeout: time.Second}, []target{{"api", rises.URL}, {"", labelled.URL}, {"", down.URL}}, time.Millisecond, &syncWriter{w: &log, wrote: reported})
	<-risen
	<-labelledSeen
	<-reported
	cancel()
	got := w.result()
	want := []peak{{"api", 3 << 20, true}, {"worker", 1024, true}, {down.URL, 0, false}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("peak %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), down.URL) {
		t.Errorf("the unreachable service was reported %d times, want once:\n%s", n, log.String())
	}
}
