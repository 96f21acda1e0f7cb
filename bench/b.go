package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// B is what a benchmark body uses of a *testing.B. The benchmarks in this
// package's _test.go files pass a *testing.B (with N as a method); uno
// bench passes its own, which follows testing.B's rules for the timer, the
// iteration count and cleanups, so that the uno binary links no package
// testing.
type B interface {
	// N is the number of iterations to run.
	N() int
	ResetTimer()
	StartTimer()
	StopTimer()
	// Elapsed is the measured time so far.
	Elapsed() time.Duration
	// ReportMetric adds a figure to the result, per run (not per
	// iteration), as testing.B.ReportMetric does.
	ReportMetric(n float64, unit string)
	Helper()
	// Cleanup registers f to run, last registered first, when the run
	// of the body ends.
	Cleanup(f func())
	// TempDir returns a new directory removed when the run ends.
	TempDir() string
	Logf(format string, args ...any)
	// Error marks the run failed; it may be called from any goroutine.
	Error(args ...any)
	// Fatal and Fatalf mark the run failed and stop it; call them from
	// the body's goroutine only.
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// benchTime is how long a benchmark runs: a duration, or n iterations
// (like go test -benchtime 2s or 1000x).
type benchTime struct {
	d time.Duration
	n int
}

// result is a benchmark's figures, as testing.BenchmarkResult has them.
type result struct {
	N     int                // iterations of the measured run
	T     time.Duration      // its measured time
	Extra map[string]float64 // its ReportMetric figures
}

// NsPerOp is the measured time per iteration.
func (r result) NsPerOp() int64 {
	if v, ok := r.Extra["ns/op"]; ok {
		return int64(v)
	}
	if r.N <= 0 {
		return 0
	}
	return r.T.Nanoseconds() / int64(r.N)
}

// measure runs f as go test -bench does: once with N = 1, then, for a
// duration, with N grown until a run lasts it (for n iterations: once
// more with N = n unless n is 1). It returns the last run's figures, or
// the error that failed a run. log, if set, receives Logf output.
func measure(f func(B), bt benchTime, log io.Writer) (result, error) {
	t := &trial{log: log}
	t.runN(f, 1)
	switch {
	case t.hasFailed():
	case bt.n > 0:
		if bt.n > 1 {
			t.runN(f, bt.n)
		}
	default:
		for n := 1; !t.hasFailed() && t.duration < bt.d && n < 1e9; {
			last := n
			n = predictN(bt.d.Nanoseconds(), int64(t.n), t.duration.Nanoseconds(), int64(last))
			t.runN(f, n)
		}
	}
	if t.hasFailed() {
		return result{}, errors.New(t.errs)
	}
	return result{N: t.n, T: t.duration, Extra: t.extra}, nil
}

// predictN is testing's estimate of the iterations that last goalns, given
// that prevIters lasted prevns: 20% more, at most 100 times and at least
// one more than last, at most 1e9.
func predictN(goalns, prevIters, prevns, last int64) int {
	prevns = max(prevns, 1)
	n := goalns * prevIters / prevns
	n += n / 5
	n = min(n, 100*last)
	n = max(n, last+1)
	n = min(n, 1e9)
	return int(n)
}

// trial is uno bench's B: runs of one benchmark body.
type trial struct {
	log io.Writer

	n        int
	timerOn  bool
	start    time.Time
	duration time.Duration
	extra    map[string]float64
	cleanups []func()

	mu     sync.Mutex // guards failed and errs, which Error may set from any goroutine
	failed bool
	errs   string
}

// runN runs f once with N = n, in a goroutine of its own (so that Fatal
// can stop it), and then its cleanups.
func (t *trial) runN(f func(B), n int) {
	runtime.GC()
	t.n = n
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.runCleanups()
		defer t.StopTimer()
		t.ResetTimer()
		t.StartTimer()
		f(t)
	}()
	<-done
}

func (t *trial) runCleanups() {
	for len(t.cleanups) > 0 {
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		f()
	}
}

func (t *trial) N() int { return t.n }

func (t *trial) ResetTimer() {
	t.extra = map[string]float64{}
	if t.timerOn {
		t.start = time.Now()
	}
	t.duration = 0
}

func (t *trial) StartTimer() {
	if !t.timerOn {
		t.start = time.Now()
		t.timerOn = true
	}
}

func (t *trial) StopTimer() {
	if t.timerOn {
		t.duration += time.Since(t.start)
		t.timerOn = false
	}
}

func (t *trial) Elapsed() time.Duration {
	d := t.duration
	if t.timerOn {
		d += time.Since(t.start)
	}
	return d
}

func (t *trial) ReportMetric(n float64, unit string) { t.extra[unit] = n }

func (t *trial) Helper() {}

func (t *trial) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *trial) TempDir() string {
	dir, err := os.MkdirTemp("", "uno-bench-")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *trial) Logf(format string, args ...any) {
	if t.log != nil {
		fmt.Fprintf(t.log, format+"\n", args...)
	}
}

func (t *trial) Error(args ...any) { t.fail(fmt.Sprint(args...)) }

func (t *trial) Fatal(args ...any) {
	t.fail(fmt.Sprint(args...))
	runtime.Goexit()
}

func (t *trial) Fatalf(format string, args ...any) {
	t.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (t *trial) hasFailed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *trial) fail(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	if t.errs != "" {
		t.errs += "; "
	}
	t.errs += msg
}

// firstError keeps the first error its goroutines report (an
// atomic.Value would panic on errors of different types).
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
