package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MinuteCounts is one minute of GET /stats/minutes: the deliveries that
// reached each status in it.
type MinuteCounts struct {
	Minute    time.Time
	Delivered int64
	Retrying  int64
	Failed    int64
}

// Total is the minute's deliveries in every status.
func (m MinuteCounts) Total() int64 { return m.Delivered + m.Retrying + m.Failed }

// ChartSeries are the series of a DeliveriesChartView, bottom to top.
var ChartSeries = []string{"delivered", "retrying", "failed"}

// The chart's drawing area, in SVG user units (the SVG scales to its box).
const (
	chartWidth  = 960
	chartHeight = 240
	chartLeft   = 56 // room for the counts
	chartRight  = 24 // room for the last time label
	chartTop    = 10
	chartBottom = 26 // room for the times
)

// DeliveriesChartView is a stacked bar chart of deliveries per minute, its
// geometry worked out in Go so the component only draws it.
type DeliveriesChartView struct {
	// Width and Height are the SVG's viewBox.
	Width, Height int
	// PlotX, PlotY, PlotW, PlotH bound the bars.
	PlotX, PlotY, PlotW, PlotH float64
	// Window says what the chart covers ("last hour").
	Window string
	// Minutes are the slots, oldest first, each with its bars.
	Minutes []ChartMinute
	// YTicks are the count gridlines, XTicks the time labels.
	YTicks []ChartTick
	XTicks []ChartTick
	// Legend has a word and a total per series, in ChartSeries order.
	Legend []ChartLegend
	// Summary says in words what the chart shows.
	Summary string
}

// ChartMinute is one minute's slot: a full-height area that names the
// minute on hover, and a bar per series with deliveries.
type ChartMinute struct {
	Minute time.Time
	X, W   float64
	Title  string
	Bars   []ChartBar
}

// ChartBar is one series' deliveries in one minute.
type ChartBar struct {
	Series     string
	Value      int64
	X, Y, W, H float64
	Title      string
}

// ChartTick is a labelled gridline: Pos is the y (counts) or x (times)
// where it is drawn.
type ChartTick struct {
	Pos   float64
	Label string
}

// ChartLegend is one series' word and its total over the window.
type ChartLegend struct {
	Series string
	Total  int64
}

// NewDeliveriesChartView lays out minutes (oldest first) as stacked bars:
// delivered at the bottom, then retrying, then failed. window names the
// span in words ("last hour").
func NewDeliveriesChartView(minutes []MinuteCounts, window string) DeliveriesChartView {
	c := DeliveriesChartView{
		Width: chartWidth, Height: chartHeight, Window: window,
		PlotX: chartLeft, PlotY: chartTop,
		PlotW: chartWidth - chartLeft - chartRight, PlotH: chartHeight - chartTop - chartBottom,
	}
	var peak int64
	totals := map[string]int64{}
	for _, m := range minutes {
		peak = max(peak, m.Total())
		totals["delivered"] += m.Delivered
		totals["retrying"] += m.Retrying
		totals["failed"] += m.Failed
	}
	for _, s := range ChartSeries {
		c.Legend = append(c.Legend, ChartLegend{Series: s, Total: totals[s]})
	}
	step := niceStep(peak)
	top := step * max(1, (peak+step-1)/step)
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, ChartTick{Pos: round1(c.PlotY + c.PlotH - float64(v)/float64(top)*c.PlotH), Label: Count(v)})
	}
	if len(minutes) == 0 {
		c.Summary = "No minutes to show."
		return c
	}
	slot := c.PlotW / float64(len(minutes))
	gap := min(2, slot*0.2)
	every := labelEvery(len(minutes))
	for i, m := range minutes {
		x := c.PlotX + float64(i)*slot
		cm := ChartMinute{Minute: m.Minute, X: round1(x), W: round1(slot), Title: minuteTitle(m)}
		if u := m.Minute.UTC(); (u.Hour()*60+u.Minute())%every == 0 {
			c.XTicks = append(c.XTicks, ChartTick{Pos: round1(x + slot/2), Label: u.Format("15:04")})
		}
		base := c.PlotY + c.PlotH
		for _, s := range ChartSeries {
			v := m.value(s)
			if v == 0 {
				continue
			}
			h := float64(v) / float64(top) * c.PlotH
			h = max(h, 1) // a single delivery stays visible
			base -= h
			cm.Bars = append(cm.Bars, ChartBar{Series: s, Value: v, X: round1(x + gap/2), Y: round1(base), W: round1(slot - gap), H: round1(h),
				Title: fmt.Sprintf("%s UTC: %s %s", m.Minute.UTC().Format("15:04"), Count(v), s)})
		}
		c.Minutes = append(c.Minutes, cm)
	}
	c.Summary = chartSummary(minutes, totals, window)
	return c
}

func (m MinuteCounts) value(series string) int64 {
	switch series {
	case "delivered":
		return m.Delivered
	case "retrying":
		return m.Retrying
	default:
		return m.Failed
	}
}

// minuteTitle names a minute and its counts, for hovering over its slot.
func minuteTitle(m MinuteCounts) string {
	return fmt.Sprintf("%s UTC: %s delivered, %s retrying, %s failed", m.Minute.UTC().Format("15:04"),
		Count(m.Delivered), Count(m.Retrying), Count(m.Failed))
}

// chartSummary says what the chart shows, for those who cannot see it.
func chartSummary(minutes []MinuteCounts, totals map[string]int64, window string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Deliveries per minute, %s: %s delivered, %s retrying, %s failed.", window,
		Count(totals["delivered"]), Count(totals["retrying"]), Count(totals["failed"]))
	busiest := minutes[0]
	var failing int
	var lastFailed time.Time
	for _, m := range minutes {
		if m.Total() > busiest.Total() {
			busiest = m
		}
		if m.Failed > 0 {
			failing++
			lastFailed = m.Minute
		}
	}
	if busiest.Total() == 0 {
		b.WriteString(" No delivery reached a status in this time.")
		return b.String()
	}
	fmt.Fprintf(&b, " Busiest minute %s UTC with %s.", busiest.Minute.UTC().Format("15:04"), Count(busiest.Total()))
	switch failing {
	case 0:
		b.WriteString(" No minute had a failure.")
	case 1:
		fmt.Fprintf(&b, " Failures in 1 minute, at %s UTC.", lastFailed.UTC().Format("15:04"))
	default:
		fmt.Fprintf(&b, " Failures in %d minutes, the last at %s UTC.", failing, lastFailed.UTC().Format("15:04"))
	}
	return b.String()
}

// niceStep is a gridline step of 1, 2 or 5 times a power of ten that
// divides 0..peak into at most four steps.
func niceStep(peak int64) int64 {
	if peak <= 4 {
		return 1
	}
	raw := float64(peak) / 4
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*pow >= raw {
			return int64(f * pow)
		}
	}
	return int64(10 * pow)
}

// labelEvery is how many minutes apart the time labels are, so that a
// window has at most about six of them.
func labelEvery(n int) int {
	for _, e := range []int{1, 5, 10, 15, 30, 60, 120, 180, 240, 360} {
		if n/e <= 6 {
			return e
		}
	}
	return 720
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// Num formats a chart coordinate for an SVG attribute.
func Num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Count formats a count with thousands separators: 12,345.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
