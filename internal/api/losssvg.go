package api

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"net/http"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// Series colours of the loss picture. Train is solid, validation dashed; the
// colours are distinct from the black axes so a reader (and the test) can
// tell the series apart.
var (
	trainColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	valColor   = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
)

// Size of the picture: one panel is 8×4.5 in; accuracy adds a second panel
// below the loss one.
const (
	svgWidth       = 8 * vg.Inch
	svgPanelHeight = 4.5 * vg.Inch
)

// lossSVG serves GET /v1/jobs/{id}/loss.svg: the job's train and validation
// loss per epoch and, when the job has them, train and validation accuracy in
// a second panel. It works while the job runs (the history so far) and after;
// a job with no finished epoch yet gets a valid picture with empty axes, so a
// dashboard that refreshes the image never shows a broken one.
func (s *Server) lossSVG(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := s.jobs.Get(r.Context(), id)
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			err = notFound("job", id)
		}
		s.writeError(w, r, err)
		return
	}
	title := fmt.Sprintf("%s · job %s · %s", job.ModelName, job.ID, job.Status)
	var buf bytes.Buffer
	if err := renderLossSVG(&buf, title, job.History); err != nil {
		s.writeError(w, r, fmt.Errorf("render loss of job %s: %w", id, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	// The picture changes after every epoch of a running job.
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// renderLossSVG draws hist as an SVG document into w. Points whose value is
// missing (nil) or not finite are left out of their series, values beyond
// ±plotLimit are clamped to it, and the title says how many of each; a series
// with no point is not drawn at all. It does not panic on any history.
func renderLossSVG(w io.Writer, title string, hist []engine.Epoch) error {
	loss := plot.New()
	loss.Title.Text = title
	loss.X.Label.Text = "epoch"
	loss.Y.Label.Text = "loss"
	loss.Legend.Top = true
	loss.Add(lightGrid())

	var n plotNotes
	trainLoss := make(plotter.XYs, 0, len(hist))
	var valLoss, trainAcc, valAcc plotter.XYs
	for _, e := range hist {
		x := float64(e.Epoch)
		trainLoss = n.appendPoint(trainLoss, x, &e.Loss)
		valLoss = n.appendPoint(valLoss, x, e.ValLoss)
		trainAcc = n.appendPoint(trainAcc, x, e.Accuracy)
		valAcc = n.appendPoint(valAcc, x, e.ValAccuracy)
	}
	if err := addSeries(loss, trainLoss, valLoss); err != nil {
		return err
	}
	widenRange(&loss.X.Min, &loss.X.Max)
	widenRange(&loss.Y.Min, &loss.Y.Max)
	if len(trainLoss) == 0 && len(valLoss) == 0 {
		loss.Title.Text = title + " · no epoch finished yet"
		emptyAxes(loss)
	}
	loss.Title.Text += n.String()
	plots := []*plot.Plot{loss}
	if len(trainAcc) > 0 || len(valAcc) > 0 {
		acc := plot.New()
		acc.X.Label.Text = "epoch"
		acc.Y.Label.Text = "accuracy"
		// Accuracy rises to the top right; the legend goes where it is not.
		acc.Legend.Top = false
		acc.Legend.Left = false
		acc.Add(lightGrid())
		if err := addSeries(acc, trainAcc, valAcc); err != nil {
			return err
		}
		widenRange(&acc.X.Min, &acc.X.Max)
		widenRange(&acc.Y.Min, &acc.Y.Max)
		plots = append(plots, acc)
	}

	height := svgPanelHeight * vg.Length(len(plots))
	canvas := vgsvg.New(svgWidth, height)
	dc := draw.New(canvas)
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter,
		PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	cells := plot.Align(rows, tiles, dc)
	for i, p := range plots {
		p.Draw(cells[i][0])
	}
	_, err := canvas.WriteTo(w)
	return err
}

// plotLimit bounds the values drawn. gonum/plot's tick search runs on
// max-min; with values near ±MaxFloat64 that difference overflows and the
// search does not end. A loss this large means the job diverged, and its exact
// size is no longer worth a picture.
const plotLimit = 1e300

// plotNotes counts the points that renderLossSVG could not draw as they are,
// so that the title can say so rather than show a silently edited curve.
type plotNotes struct {
	nonFinite, clamped int
}

// appendPoint appends (x, *v) when v is set. A non-finite value is left out
// and a value beyond ±plotLimit is clamped to it; both are counted.
func (n *plotNotes) appendPoint(xys plotter.XYs, x float64, v *float64) plotter.XYs {
	switch {
	case v == nil:
		return xys
	case math.IsNaN(*v) || math.IsInf(*v, 0):
		n.nonFinite++
		return xys
	case math.Abs(*v) > plotLimit:
		n.clamped++
		return append(xys, plotter.XY{X: x, Y: math.Copysign(plotLimit, *v)})
	}
	return append(xys, plotter.XY{X: x, Y: *v})
}

// String is the note to append to the title, empty when every point is drawn
// as it is.
func (n plotNotes) String() string {
	var s string
	if n.nonFinite > 0 {
		s += fmt.Sprintf(" · %d non-finite values left out", n.nonFinite)
	}
	if n.clamped > 0 {
		s += fmt.Sprintf(" · %d values beyond ±%.0e clamped", n.clamped, plotLimit)
	}
	return s
}

// widenRange makes [*min, *max] a range gonum/plot can put ticks on when the
// data leave it empty. plot widens a flat range by ±1, which does nothing to
// values beyond 2^53 and then panics ("illegal range"); here a flat range is
// widened by 10% of its magnitude (at least 1) instead. An infinite range (no
// data) is left for the caller.
func widenRange(min, max *float64) {
	lo, hi := *min, *max
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || lo < hi {
		return
	}
	d := math.Max(1, 0.1*math.Abs(lo))
	*min, *max = lo-d, hi+d
}

// addSeries adds the train and validation lines that have points, with
// their legend entries. One epoch gives a single point, which a line cannot
// show, so series are drawn with point glyphs as well.
func addSeries(p *plot.Plot, train, val plotter.XYs) error {
	for _, s := range []struct {
		name   string
		xys    plotter.XYs
		color  color.Color
		dashed bool
	}{
		{"train", train, trainColor, false},
		{"validation", val, valColor, true},
	} {
		if len(s.xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return fmt.Errorf("%s series: %w", s.name, err)
		}
		line.Color = s.color
		line.Width = vg.Points(1.5)
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		points.Color = s.color
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(1.5)
		p.Add(line, points)
		p.Legend.Add(s.name, line)
	}
	return nil
}

// lightGrid is a faint grid that helps read values off the curves.
func lightGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 0xe0}
	g.Horizontal.Color = color.Gray{Y: 0xe0}
	return g
}

// emptyAxes gives a plot without data a sensible frame: epochs from 0 to 1
// and loss from 0 to 1, instead of the infinite range an empty plot has.
func emptyAxes(p *plot.Plot) {
	p.X.Min, p.X.Max = 0, 1
	p.Y.Min, p.Y.Max = 0, 1
}
