package web

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// hour is 60 minutes ending at now, with deliveries in a few of them.
func hour() []MinuteCounts {
	start := now.Add(-59 * time.Minute)
	var ms []MinuteCounts
	for i := range 60 {
		ms = append(ms, MinuteCounts{Minute: start.Add(time.Duration(i) * time.Minute)})
	}
	ms[10].Delivered = 40
	ms[30].Delivered, ms[30].Retrying, ms[30].Failed = 100, 10, 5
	ms[59].Failed = 1
	return ms
}

func attrFloat(t *testing.T, s *goquery.Selection, name string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s.AttrOr(name, ""), 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s.AttrOr(name, ""), err)
	}
	return f
}

func TestDeliveriesChartBarsMatchTheData(t *testing.T) {
	t.Parallel()
	ms := hour()
	c := NewDeliveriesChartView(ms, "last hour")
	doc := render(t, DeliveriesChart(c))
	if n := testid(doc, "chart-minute").Length(); n != 60 {
		t.Fatalf("%d minutes drawn, want 60", n)
	}
	// One bar per series with deliveries in a minute, and none for zeros.
	bars := testid(doc, "chart-bar")
	if bars.Length() != 5 {
		t.Fatalf("%d bars, want 5", bars.Length())
	}
	// Heights are proportional to the values, on one scale; stacked
	// delivered, retrying, failed from the bottom up.
	var perUnit float64
	bottom := c.PlotY + c.PlotH
	doc.Find(`[data-testid="chart-minute"]`).Each(func(i int, g *goquery.Selection) {
		m := ms[i]
		if got := g.AttrOr("data-minute", ""); got != m.Minute.Format(time.RFC3339) {
			t.Errorf("minute %d is %s", i, got)
		}
		if !strings.HasPrefix(g.ChildrenFiltered("title").Text(), m.Minute.Format("15:04")+" UTC: ") {
			t.Errorf("minute %d title %q", i, g.ChildrenFiltered("title").Text())
		}
		base := bottom
		var series []string
		g.Find(`[data-testid="chart-bar"]`).Each(func(_ int, b *goquery.Selection) {
			s := b.AttrOr("data-series", "")
			series = append(series, s)
			want := m.value(s)
			if got := b.AttrOr("data-value", ""); got != strconv.FormatInt(want, 10) {
				t.Errorf("minute %d %s: value %s, want %d", i, s, got, want)
			}
			if !strings.Contains(b.Find("title").Text(), strconv.FormatInt(want, 10)+" "+s) {
				t.Errorf("minute %d %s: title %q", i, s, b.Find("title").Text())
			}
			if !b.HasClass("series-" + s) {
				t.Errorf("minute %d %s: class %q", i, s, b.AttrOr("class", ""))
			}
			y, h := attrFloat(t, b, "y"), attrFloat(t, b, "height")
			if math.Abs(y+h-base) > 0.2 {
				t.Errorf("minute %d %s: bar from %.1f to %.1f, not stacked on %.1f", i, s, y, y+h, base)
			}
			base = y
			if want >= 10 {
				if perUnit == 0 {
					perUnit = h / float64(want)
				} else if math.Abs(h-perUnit*float64(want)) > 0.2 {
					t.Errorf("minute %d %s: height %.1f for %d, want %.1f", i, s, h, want, perUnit*float64(want))
				}
			} else if h < 1 {
				t.Errorf("minute %d %s: %d delivery drawn %.1f high, not visible", i, s, want, h)
			}
		})
		var want []string
		for _, s := range ChartSeries {
			if m.value(s) > 0 {
				want = append(want, s)
			}
		}
		if strings.Join(series, ",") != strings.Join(want, ",") {
			t.Errorf("minute %d: series %v, want %v", i, series, want)
		}
	})
	// The tallest bar fits under the top gridline.
	if top := c.YTicks[len(c.YTicks)-1]; testid(doc, "chart-y-label").Last().Text() != top.Label || perUnit*115 > c.PlotH+0.2 {
		t.Errorf("scale: top tick %q, 115 deliveries %.1f high in %.1f", top.Label, perUnit*115, c.PlotH)
	}
}

func TestDeliveriesChartSaysItInWords(t *testing.T) {
	t.Parallel()
	doc := render(t, DeliveriesChart(NewDeliveriesChartView(hour(), "last hour")))
	for series, total := range map[string]string{"delivered": "140", "retrying": "10", "failed": "6"} {
		l := testid(doc, "legend-"+series)
		if !strings.Contains(l.Text(), series) || l.Find(`[data-testid="legend-total"]`).Text() != total {
			t.Errorf("legend %s: %q", series, l.Text())
		}
	}
	sum := testid(doc, "chart-summary").Text()
	for _, want := range []string{"140 delivered, 10 retrying, 6 failed", "Busiest minute 11:31 UTC with 115", "Failures in 2 minutes, the last at 12:00 UTC"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q lacks %q", sum, want)
		}
	}
	svg := testid(doc, "chart-svg")
	if svg.AttrOr("role", "") != "img" || svg.AttrOr("aria-describedby", "") != "chart-summary" || svg.Find("title#chart-title").Length() != 1 {
		t.Error("the chart is not labelled for assistive technology")
	}
	var labels []string
	testid(doc, "chart-x-label").Each(func(_ int, s *goquery.Selection) { labels = append(labels, s.Text()) })
	if strings.Join(labels, " ") != "11:10 11:20 11:30 11:40 11:50 12:00" {
		t.Errorf("time labels %v", labels)
	}
}

func TestDeliveriesChartWithoutDeliveries(t *testing.T) {
	t.Parallel()
	ms := hour()
	for i := range ms {
		ms[i] = MinuteCounts{Minute: ms[i].Minute}
	}
	doc := render(t, DeliveriesChart(NewDeliveriesChartView(ms, "last hour")))
	if testid(doc, "chart-bar").Length() != 0 || testid(doc, "chart-minute").Length() != 60 {
		t.Error("bars drawn without deliveries")
	}
	if !strings.Contains(testid(doc, "chart-summary").Text(), "No delivery reached a status") {
		t.Errorf("summary %q", testid(doc, "chart-summary").Text())
	}
	if testid(render(t, DeliveriesChart(NewDeliveriesChartView(nil, "last hour"))), "chart-minute").Length() != 0 {
		t.Error("minutes drawn without data")
	}
}

func TestNiceStepAndCount(t *testing.T) {
	t.Parallel()
	for peak, want := range map[int64]int64{0: 1, 3: 1, 7: 2, 115: 50, 400: 100, 401: 200, 12345: 5000} {
		if got := niceStep(peak); got != want {
			t.Errorf("niceStep(%d) = %d, want %d", peak, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
