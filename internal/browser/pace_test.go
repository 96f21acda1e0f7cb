package browser

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What a quiet machine shows (2 cores, AMD EPYC, load average about 1);
// the run's measurements are compared with these figures. To measure them
// again: go test ./internal/browser -run '^$' -bench FirstPage -benchtime
// 6x -v logs each launch and first page, and the calibration.
const (
	// quietSpin is one calibration round (spinRound).
	quietSpin = 7200 * time.Microsecond
	// quietLaunch is starting Chromium with a fresh profile.
	quietLaunch = time.Second
	// quietPage is the first page of the web app in a fresh profile
	// becoming usable, as the harness measures it: navigation, uno.wasm
	// fetched, compiled and started, the database opened.
	quietPage = 3 * time.Second
)

// How deadlines are derived from the slowdown (see the package's doc).
const (
	// margin is how many times its expected time a step may take.
	margin = 4
	// floor is the shortest deadline. It covers the client's fixed
	// timers, which a fast machine does not shorten: the web app retries
	// a connection within 3 s, a dial gives up after 10 s.
	floor = 20 * time.Second
	// ceiling is the longest, so that a measurement gone wrong (a page
	// that hung for minutes) cannot make a hang wait for ever.
	ceiling = 15 * time.Minute
	// grace is kept before the test binary's own deadline (go test
	// -timeout): a deadline that would end later is cut short, so the
	// test fails with its console logs instead of a panic.
	grace = 30 * time.Second
)

// pace is how fast the browser tests run on this machine now: the
// slowest calibration, browser launch and first page measured so far,
// and the UNO_BROWSER_SLOWDOWN override. It is safe for concurrent use.
type pace struct {
	mu       sync.Mutex
	override float64       // UNO_BROWSER_SLOWDOWN; 0 when unset
	spin     time.Duration // the slowest calibration's mean round
	launch   time.Duration // the slowest browser launch; 0 before the first
	page     time.Duration // the slowest page to usable; 0 before the first
}

// run is the pace of this test binary's run.
var run = newPace()

func newPace() *pace {
	p := &pace{}
	if s := os.Getenv("UNO_BROWSER_SLOWDOWN"); s != "" {
		// A bad value is reported, not fatal: the measured slowdown
		// still holds.
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			fmt.Fprintf(os.Stderr, "browser tests: UNO_BROWSER_SLOWDOWN=%q is not a positive number; ignored\n", s)
		} else {
			p.override = f
		}
	}
	return p
}

// spinRounds and spinBudget bound a calibration: at most that many rounds
// (0.2 s of CPU on a quiet machine), and no new round after that long.
const (
	spinRounds = 30
	spinBudget = 3 * time.Second
)

// calibrate runs the calibration loop on one core and records its mean
// round; it returns that mean.
func (p *pace) calibrate() time.Duration {
	var table [spinTable]uint32
	var sum uint32
	start := time.Now()
	n := 0
	for n < spinRounds && (n == 0 || time.Since(start) < spinBudget) {
		sum += spinRound(&table)
		n++
	}
	mean := time.Since(start) / time.Duration(n)
	spinSink.Store(sum)
	p.mu.Lock()
	p.spin = max(p.spin, mean)
	p.mu.Unlock()
	return mean
}

const (
	spinTable = 1 << 14 // 64 KiB of uint32
	spinIters = 1 << 22
)

// spinSink keeps the compiler from dropping the calibration loop.
var spinSink atomic.Uint32

// spinRound is the calibration workload: integer arithmetic and memory
// reads and writes over a 64 KiB table (no SHA or AES instructions, so
// CPUs with and without them compare fairly).
func spinRound(table *[spinTable]uint32) uint32 {
	x := uint32(2463534242)
	var sum uint32
	for range spinIters {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		sum += table[x&(spinTable-1)]
		table[(x>>7)&(spinTable-1)] = sum
	}
	return sum
}

// sawLaunch records how long a browser took to start.
func (p *pace) sawLaunch(d time.Duration) {
	p.mu.Lock()
	p.launch = max(p.launch, d)
	p.mu.Unlock()
}

// sawPage records how long a page took to become usable.
func (p *pace) sawPage(d time.Duration) {
	p.mu.Lock()
	p.page = max(p.page, d)
	p.mu.Unlock()
}

// slowdown is how many times slower than a quiet machine this run is: the
// override if set, else the largest of the calibration's, the launch's and
// the first page's ratios, at least 1.
func (p *pace) slowdown() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.override > 0 {
		return p.override
	}
	return max(1, ratio(p.spin, quietSpin), ratio(p.launch, quietLaunch), ratio(p.page, quietPage))
}

func ratio(d, quiet time.Duration) float64 { return float64(d) / float64(quiet) }

// deadline is how long tb waits for a step that takes quiet on a quiet
// machine: derive(quiet), ending grace before tb's own deadline.
func (p *pace) deadline(tb testing.TB, quiet time.Duration) time.Duration {
	d := p.derive(quiet)
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := t.Deadline(); ok {
			d = max(min(d, time.Until(end)-grace), time.Second)
		}
	}
	return d.Round(time.Millisecond)
}

// derive is margin × slowdown × quiet, at least floor, at most ceiling.
func (p *pace) derive(quiet time.Duration) time.Duration {
	d := time.Duration(margin * p.slowdown() * float64(quiet))
	return min(max(d, floor), ceiling)
}

// String says what was measured and the slowdown derived from it.
func (p *pace) String() string {
	p.mu.Lock()
	spin, launch, page, override := p.spin, p.launch, p.page, p.override
	p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "calibration %s/round (quiet %s, %.1f×)", spin.Round(10*time.Microsecond), quietSpin, ratio(spin, quietSpin))
	if launch > 0 {
		fmt.Fprintf(&b, ", launch %s (quiet %s, %.1f×)", launch.Round(time.Millisecond), quietLaunch, ratio(launch, quietLaunch))
	}
	if page > 0 {
		fmt.Fprintf(&b, ", slowest page %s (quiet first page %s, %.1f×)", page.Round(time.Millisecond), quietPage, ratio(page, quietPage))
	}
	if override > 0 {
		fmt.Fprintf(&b, ", UNO_BROWSER_SLOWDOWN=%g", override)
	}
	fmt.Fprintf(&b, ": slowdown %.1f×", p.slowdown())
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, " (load average %s)", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	return b.String()
}

func TestPace_Deadline(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     *pace
		quiet time.Duration
		want  time.Duration
	}{
		{"nothing measured: the floor", &pace{}, quietPage, floor},
		{"quiet machine: the floor", &pace{spin: quietSpin, launch: quietLaunch, page: quietPage}, quietPage, floor},
		{"faster than quiet: the floor", &pace{spin: quietSpin / 2, page: quietPage / 2}, quietPage, floor},
		{"calibration 10x slower, before any page", &pace{spin: 10 * quietSpin}, quietPage, margin * 10 * quietPage},
		{"launch 8x slower", &pace{spin: quietSpin, launch: 8 * quietLaunch}, quietPage, margin * 8 * quietPage},
		{"a page 10x slower", &pace{spin: quietSpin, launch: quietLaunch, page: 30 * time.Second}, quietPage, margin * 10 * quietPage},
		{"the largest ratio wins", &pace{spin: 3 * quietSpin, launch: 12 * quietLaunch, page: 6 * quietPage}, quietPage, margin * 12 * quietPage},
		{"a longer step", &pace{page: 5 * quietPage}, 40 * time.Second, margin * 5 * 40 * time.Second},
		{"the ceiling", &pace{page: 100 * quietPage}, 40 * time.Second, ceiling},
		{"override replaces the measurements", &pace{override: 2, page: 10 * quietPage}, 10 * time.Second, margin * 2 * 10 * time.Second},
		{"override below the floor", &pace{override: 0.1}, quietPage, floor},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.derive(c.quiet); got != c.want {
				t.Errorf("derive(%s) = %s, want %s (%s)", c.quiet, got, c.want, c.p)
			}
		})
	}
}

// A deadline ends grace before the test's own (go test -timeout).
func TestPace_DeadlineBeforeTheTests(t *testing.T) {
	end, ok := t.Deadline()
	if !ok {
		t.Skip("no -timeout")
	}
	p := pace{page: 1000 * quietPage}
	if got := p.deadline(t, time.Hour); got > time.Until(end)-grace+time.Second {
		t.Errorf("deadline %s, but the test ends in %s", got, time.Until(end).Round(time.Second))
	}
}

func TestPace_Override(t *testing.T) {
	for env, want := range map[string]float64{"": 0, "3": 3, "0.5": 0.5, "0": 0, "-2": 0, "fast": 0} {
		t.Setenv("UNO_BROWSER_SLOWDOWN", env)
		if got := newPace().override; got != want {
			t.Errorf("UNO_BROWSER_SLOWDOWN=%q: override %g, want %g", env, got, want)
		}
	}
}
