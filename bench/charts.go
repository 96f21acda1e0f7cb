package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/go-analyze/charts"
)

// chart is one SVG of the report.
type chart struct {
	file, title string
	svg         []byte
}

// bars is the data of a grouped bar chart: one value per label per series.
type bars struct {
	file, title, unit string
	labels, series    []string
	values            [][]float64 // [series][label]
}

// add adds a label with one value per series, if the workload has them.
func (c *bars) add(label string, vs ...float64) {
	c.labels = append(c.labels, label)
	for i, v := range vs {
		c.values[i] = append(c.values[i], v)
	}
}

func newBars(file, title, unit string, series ...string) *bars {
	return &bars{file: file, title: title, unit: unit, series: series, values: make([][]float64, len(series))}
}

// charts draws the report's charts; a chart with no data is left out.
func (r *Report) charts() ([]chart, error) {
	lat := newBars("latency.svg", "Latency percentiles: write → the receiver sees it", "ms", "p50", "p90", "p99", "max")
	for _, id := range []string{"paced-1-full", "paced-1-relaxed", "relay-1-replicas", "relay-1", "paced-49-full", "paced-49-relaxed", "relay-49-replicas", "relay-49", "room-latency", "ws-echo", "fsync-paced"} {
		if m := r.byID[id]; m.ok() {
			lat.add(id, m.Median["p50-ms"], m.Median["p90-ms"], m.Median["p99-ms"], m.Median["max-ms"])
		}
	}
	tput := newBars("throughput-clients.svg", "Deliveries/s (updates received by the other clients) by clients", "deliveries/s", "full durability", "relaxed durability")
	for _, n := range []string{"2", "50"} {
		full, relaxed := r.byID["clients-"+n+"-full"], r.byID["clients-"+n+"-relaxed"]
		if full.ok() && relaxed.ok() {
			label, _, _ := strings.Cut(full.Title, ",")
			tput.add(label, full.Median["deliveries/s"], relaxed.Median["deliveries/s"])
		}
	}
	ceil := newBars("ceilings-throughput.svg", "uno's throughput as a share of its ceiling's, same run", "% of the ceiling", "uno / ceiling")
	floor := r.byID["fsync-floor"]
	shared := r.byID["fsync-shared-2"]
	bcast := r.byID["ws-broadcast"]
	for _, x := range []struct {
		id, unit string
		c        *Measured
		cunit    string
		cname    string
	}{
		{"local-single", "tx/s", floor, "tx/s", "fsync floor"},
		{"clients-2-full", "updates/s", floor, "tx/s", "fsync floor"},
		{"clients-2-full", "updates/s", shared, "tx/s", "2 fsync floors at once"},
		{"clients-2-relaxed", "updates/s", floor, "tx/s", "fsync floor"},
		{"clients-50-full", "deliveries/s", bcast, "deliveries/s", "raw broadcast"},
		{"clients-50-relaxed", "deliveries/s", bcast, "deliveries/s", "raw broadcast"},
		{"room", "deliveries/s", bcast, "deliveries/s", "raw broadcast"},
	} {
		if m := r.byID[x.id]; m.ok() && x.c.ok() && x.c.Median[x.cunit] > 0 {
			ceil.add(x.id+" / "+x.cname, 100*m.Median[x.unit]/x.c.Median[x.cunit])
		}
	}
	ceilLat := newBars("ceilings-latency.svg", "uno against its ceilings: p99 latency, write → a receiver sees it (same run)", "ms", "uno p99", "replica relay p99", "durable relay p99")
	for _, n := range []string{"1", "49"} {
		replicas, relay := r.byID["relay-"+n+"-replicas"], r.byID["relay-"+n]
		for _, mode := range []string{"full", "relaxed"} {
			if m := r.byID["paced-"+n+"-"+mode]; m.ok() && replicas.ok() && relay.ok() {
				ceilLat.add("paced-"+n+"-"+mode, m.Median["p99-ms"], replicas.Median["p99-ms"], relay.Median["p99-ms"])
			}
		}
	}
	var out []chart
	for _, c := range []*bars{lat, tput, ceil, ceilLat} {
		if len(c.labels) == 0 {
			continue
		}
		svg, err := c.svg()
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.file, err)
		}
		out = append(out, chart{file: c.file, title: c.title, svg: svg})
	}
	return out, nil
}

// svg draws c as a horizontal grouped bar chart.
func (c *bars) svg() ([]byte, error) {
	// Horizontal bars run bottom up: reverse, so the chart reads as the tables do.
	labels := slices.Clone(c.labels)
	slices.Reverse(labels)
	values := make([][]float64, len(c.values))
	for i, vs := range c.values {
		values[i] = slices.Clone(vs)
		slices.Reverse(values[i])
	}
	opt := charts.NewBarChartOptionWithData(values)
	opt.Horizontal = true
	for i := range opt.ValueAxis {
		opt.ValueAxis[i].Min = charts.Ptr(0.0) // bars start at zero
	}
	opt.Title = charts.TitleOption{Text: c.title, Subtext: c.unit}
	opt.CategoryAxis.Labels = labels
	opt.Legend = charts.LegendOption{SeriesNames: c.series, Offset: charts.OffsetRight}
	opt.SeriesLabelPosition = "right"
	opt.ValueFormatter = func(f float64) string {
		if f >= 100 || f == math.Trunc(f) {
			return num(f)
		}
		return fmt.Sprintf("%.2f", f)
	}
	p := charts.NewPainter(charts.PainterOptions{OutputFormat: charts.ChartOutputSVG, Width: 900, Height: 140 + 22*len(c.labels)*len(c.series) + 20*len(c.labels)})
	if err := p.BarChart(opt); err != nil {
		return nil, err
	}
	return p.Bytes()
}
