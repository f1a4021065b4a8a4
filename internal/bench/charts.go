package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// distQuantiles are the quantiles of each load's latency that the results
// keep (Latency.Dist) and the latency charts draw.
var distQuantiles = []float64{0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999}

// Quantile is one point of a latency distribution.
type Quantile struct {
	Q  float64 `json:"q"`
	MS float64 `json:"ms"`
}

// chartFile is a chart written beside the results: its file name and what
// it shows.
type chartFile struct {
	File, Caption string
}

// writeCharts draws the charts of rep as SVG files named <base>-<chart>.svg
// (base: the results' path without extension) and returns them in the
// order the results list them.
func writeCharts(base string, rep Report) ([]chartFile, error) {
	m := rep.Median
	var out []chartFile
	add := func(suffix, caption string, p *plot.Plot, w, h vg.Length) error {
		if p == nil {
			return nil
		}
		path := base + "-" + suffix + ".svg"
		if err := p.Save(w, h, path); err != nil {
			return fmt.Errorf("chart %s: %w", path, err)
		}
		out = append(out, chartFile{File: filepath.Base(path), Caption: caption})
		return nil
	}
	runs := ""
	if rep.Meta.Runs > 1 {
		runs = fmt.Sprintf(" (medians of %d runs)", rep.Meta.Runs)
	}
	conns := strconv.Itoa(rep.Meta.Connections)
	loadCharts := func(prefix, file, title string, l Loads) error {
		if err := add(file+"latency-reads", title+"latency of the reads beside raw Fiber serving the same JSON", latencyChart(
			prefix+"Reads, "+conns+" connections: latency by percentile"+runs,
			[]namedLoad{{"raw Fiber GET (baseline)", l.RawFiber.Latency}, {"cached GET /api/articles/{id}", l.Get.Latency}, {"GET /api/articles?limit=20", l.List.Latency}}),
			7*vg.Inch, 4.5*vg.Inch); err != nil {
			return err
		}
		return add(file+"latency-writes", title+"latency of the writes beside raw synchronous JetStream publish of the same events", latencyChart(
			prefix+"Writes, "+conns+" connections: latency by percentile"+runs,
			[]namedLoad{{"raw publish of the creates (baseline)", l.RawPublish.Latency}, {"POST /api/articles", l.Post.Latency},
				{"raw publish of the updates (baseline)", l.RawUpdate.Latency}, {"PUT /api/articles/{id}", l.Put.Latency},
				{fmt.Sprintf("write → visible at %s/s", fmtInt(float64(l.Visibility.Rate))), l.Visibility.Latency}}),
			7*vg.Inch, 4.5*vg.Inch)
	}
	if rep.Meta.ran(partLoads) {
		if err := loadCharts("", "", "", m.Loads); err != nil {
			return nil, err
		}
	}
	if rep.Meta.ran(partCluster) {
		if err := loadCharts(fmt.Sprintf("Cluster, R%d: ", m.Cluster.Replicas), "cluster-", "Cluster: ", m.Cluster); err != nil {
			return nil, err
		}
	}
	if err := add("ratios", "Throughput over the same-run baselines, and the targets", ratioChart("Throughput over the baseline of the same run"+runs, m, rep.Meta),
		9*vg.Inch, 4.5*vg.Inch); err != nil {
		return nil, err
	}
	if err := add("memory", "Peak resident memory of each process", memoryChart("Peak resident memory (VmHWM)"+runs, m.RSS),
		7*vg.Inch, vg.Length(1.2+0.35*float64(len(m.RSS)))*vg.Inch); err != nil {
		return nil, err
	}
	return out, nil
}

// chartsSection is the Markdown that shows the charts.
func chartsSection(charts []chartFile) string {
	if len(charts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nCharts:\n\n")
	for _, c := range charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", c.Caption, c.File)
	}
	return b.String()
}

type namedLoad struct {
	name string
	lat  Latency
}

// points is a latency distribution as (quantile, ms) points, the maximum
// last as quantile 1: the kept distribution, or for results written before
// it was kept, the percentiles of the table.
func (l Latency) points() []Quantile {
	if l.Max == 0 {
		return nil
	}
	pts := l.Dist
	if len(pts) == 0 {
		pts = []Quantile{{0.5, l.P50}, {0.99, l.P99}, {0.999, l.P999}}
	}
	return append(pts[:len(pts):len(pts)], Quantile{1, l.Max})
}

// nines places quantile q on the percentile axis: 0.9 at 1, 0.99 at 2, ...,
// and the maximum (q = 1) half a step past last.
func nines(q, last float64) float64 {
	if q >= 1 {
		return -math.Log10(1-last) + 0.5
	}
	return -math.Log10(1 - q)
}

// latencyChart draws each load's latency against its percentile, on a log
// scale of milliseconds.
func latencyChart(title string, loads []namedLoad) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(ticks125)
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	last, drawn := 0.0, 0
	for _, l := range loads {
		if pts := l.lat.points(); len(pts) >= 2 {
			last = max(last, pts[len(pts)-2].Q)
		}
	}
	for i, l := range loads {
		pts := l.lat.points()
		if len(pts) < 2 {
			continue
		}
		xys := make(plotter.XYs, len(pts))
		for j, q := range pts {
			xys[j] = plotter.XY{X: nines(q.Q, last), Y: max(q.MS, 0.001)}
		}
		line, scatter, err := plotter.NewLinePoints(xys)
		if err != nil {
			continue
		}
		line.Color, scatter.Color = plotutil.Color(i), plotutil.Color(i)
		line.Width = vg.Points(1.5)
		scatter.Shape = draw.CircleGlyph{}
		scatter.Radius = vg.Points(2)
		if strings.Contains(l.name, "baseline") {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line, scatter)
		p.Legend.Add(l.name, line, scatter)
		drawn++
	}
	if drawn == 0 {
		return nil
	}
	var ticks plot.ConstantTicks
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		if q <= last {
			ticks = append(ticks, plot.Tick{Value: nines(q, last), Label: strconv.FormatFloat(100*q, 'f', -1, 64) + "%"})
		}
	}
	ticks = append(ticks, plot.Tick{Value: nines(1, last), Label: "max"})
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = nines(0.1, last)-0.05, nines(1, last)+0.1
	return p
}

// ticks125 marks a log scale at 1, 2 and 5 times each power of ten, labelled.
func ticks125(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow10(int(e)) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow10(int(e))
			if v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ticks
}

// fmtCount writes a count of articles short: 100k, 1M.
func fmtCount(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return fmtInt(float64(n))
}

// ratioChart draws inkstream's throughput over each same-run baseline, with
// the target where DESIGN.md sets one as a ratio.
func ratioChart(title string, m Result, meta Meta) *plot.Plot {
	type bar struct {
		name          string
		ratio, target float64
	}
	var bars []bar
	if meta.ran(partLoads) {
		bars = append(bars, bar{"cached GET\n/ raw Fiber", m.Ratios.GetVsRawFiber, targetGetRatio},
			bar{"POST\n/ raw publish", m.Ratios.PostVsRawPublish, targetWriteRatio},
			bar{"PUT\n/ raw publish", m.Ratios.PutVsRawUpdate, targetWriteRatio})
		if m.Bulk.Requests > 0 {
			bars = append(bars, bar{"bulk\n/ raw batch", m.Ratios.BulkVsRawBatch, targetBulkRatio})
		}
	}
	if meta.ran(partReplay) && m.Ratios.ReplayVsPublish > 0 {
		bars = append(bars, bar{"catch-up\n/ async publish", m.Ratios.ReplayVsPublish, targetReplayRatio})
		if m.Ratios.RebuildVsPublish > 0 {
			bars = append(bars, bar{"rebuild\n/ async publish", m.Ratios.RebuildVsPublish, targetRebuildRatio})
		}
	}
	if meta.ran(partMemory) && len(m.Memory) > 0 {
		for _, mm := range m.Memory {
			bars = append(bars, bar{fmt.Sprintf("GET, %s\narticles / raw Fiber", fmtCount(mm.Articles)), mm.GetVsRawFiber, targetGetRatio})
		}
	}
	if meta.ran(partCluster) {
		bars = append(bars, bar{"R3: GET\n/ raw Fiber", m.Ratios.ClusterGet, 0}, bar{"R3: POST\n/ raw publish", m.Ratios.ClusterPost, 0},
			bar{"R3: PUT\n/ raw publish", m.Ratios.ClusterPut, 0})
		if m.Cluster.Bulk.Requests > 0 {
			bars = append(bars, bar{"R3: bulk\n/ raw batch", m.Ratios.ClusterBulk, 0})
		}
	}
	if len(bars) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "× baseline"
	var values plotter.Values
	var names []string
	var targets plotter.XYs
	for i, b := range bars {
		values = append(values, b.ratio)
		names = append(names, fmt.Sprintf("%s\n%.2f×", b.name, b.ratio))
		if b.target > 0 {
			targets = append(targets, plotter.XY{X: float64(i), Y: b.target})
		}
	}
	bc, err := plotter.NewBarChart(values, vg.Points(40))
	if err != nil {
		return nil
	}
	bc.Color = plotutil.Color(0)
	bc.LineStyle.Width = 0
	p.Add(plotter.NewGrid(), bc)
	base, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(bars)) - 0.5, Y: 1}})
	if err == nil {
		base.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(base)
		p.Legend.Add("baseline (1×)", base)
	}
	if len(targets) > 0 {
		sc, err := plotter.NewScatter(targets)
		if err == nil {
			sc.Shape = draw.BoxGlyph{}
			sc.Color = color.RGBA{R: 200, A: 255}
			sc.Radius = vg.Points(4)
			p.Add(sc)
			p.Legend.Add("target", sc)
		}
	}
	p.Legend.Top = true
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = math.Max(1.2, float64(maxOf(values))*1.15)
	return p
}

func maxOf(vs plotter.Values) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

// memoryChart draws each process's peak resident memory as a horizontal bar.
func memoryChart(title string, rss []RSS) *plot.Plot {
	if len(rss) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "MiB"
	var values plotter.Values
	var names []string
	// Top to bottom in the order of the table.
	for i := len(rss) - 1; i >= 0; i-- {
		values = append(values, rss[i].MiB)
		names = append(names, fmt.Sprintf("%s (%.0f MiB)", rss[i].Process, rss[i].MiB))
	}
	bc, err := plotter.NewBarChart(values, vg.Points(14))
	if err != nil {
		return nil
	}
	bc.Horizontal = true
	bc.Color = plotutil.Color(1)
	bc.LineStyle.Width = 0
	p.Add(plotter.NewGrid(), bc)
	p.NominalY(names...)
	p.X.Min, p.X.Max = 0, maxOf(values)*1.1
	return p
}
