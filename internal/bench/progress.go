package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// plainEvery is how often a long step says how far it has come when its
// log is not a terminal.
const plainEvery = 5 * time.Second

// progress shows how far a long step has come: a bar when the log is a
// terminal, else a plain line through logf every plainEvery and one at the
// end.
type progress struct {
	w           io.Writer
	desc, unit  string
	total       int64
	bar         *progressbar.ProgressBar
	logf        func(string, ...any)
	start, last time.Time
	ended       bool
}

// newProgress starts the progress of a step of total units (events, ...).
func newProgress(w io.Writer, logf func(string, ...any), desc, unit string, total int64) *progress {
	p := &progress{w: w, desc: desc, unit: unit, total: total, logf: logf, start: time.Now(), last: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = newBar(w, desc, unit, total)
	}
	return p
}

func newBar(w io.Writer, desc, unit string, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
		progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
}

// set says that done units of total are done.
func (p *progress) set(done int64) {
	if p.ended {
		return
	}
	done = min(done, p.total)
	if p.bar != nil {
		_ = p.bar.Set64(done)
		p.ended = done >= p.total
		return
	}
	if done < p.total && time.Since(p.last) < plainEvery {
		return
	}
	elapsed := time.Since(p.start)
	p.logf("%s: %s of %s %s (%.0f%%) in %s, %s %s/s", p.desc, fmtInt(float64(done)), fmtInt(float64(p.total)), p.unit,
		100*float64(done)/float64(max(p.total, 1)), elapsed.Round(100*time.Millisecond), fmtInt(float64(done)/max(elapsed.Seconds(), 1e-3)), p.unit)
	p.last, p.ended = time.Now(), done >= p.total
}

// end closes the bar of a step that stops short of its total.
func (p *progress) end() {
	if p.bar != nil && !p.ended {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
	p.ended = true
}
