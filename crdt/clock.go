package crdt

import (
	"errors"
	"fmt"
	"time"
)

// Timestamp is a hybrid logical clock reading: the high 48 bits hold
// milliseconds since the Unix epoch, the low 16 bits a logical counter that
// orders events within one millisecond. Timestamps compare as plain integers.
type Timestamp uint64

const (
	logicalBits = 16
	maxLogical  = 1<<logicalBits - 1
	// MaxMillis is the largest millisecond value a Timestamp can hold.
	MaxMillis = 1<<48 - 1
)

// MakeTimestamp builds a Timestamp from milliseconds and a logical counter.
// It panics if ms is outside [0, MaxMillis]: callers pass clock readings.
func MakeTimestamp(ms int64, logical uint16) Timestamp {
	if ms < 0 || ms > MaxMillis {
		panic(fmt.Sprintf("crdt: timestamp millis %d out of range", ms))
	}
	return Timestamp(uint64(ms)<<logicalBits | uint64(logical))
}

// Millis returns the physical part in milliseconds since the Unix epoch.
func (t Timestamp) Millis() int64 { return int64(t >> logicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t & maxLogical) }

// Time returns the physical part as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Millis()).UTC() }

// String formats t as RFC 3339 with milliseconds, then "+" and the logical counter.
func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d", t.Time().Format("2006-01-02T15:04:05.000Z"), t.Logical())
}

// DefaultMaxDrift is the default bound on how far ahead of the local wall
// clock a remote timestamp may be before [Clock.Observe] rejects it.
const DefaultMaxDrift = 24 * time.Hour

// ErrClockDrift is matched (with errors.Is) by every *DriftError.
var ErrClockDrift = errors.New("crdt: remote clock too far ahead")

// DriftError reports a remote timestamp further ahead of the local wall
// clock than the configured maximum drift.
type DriftError struct {
	Remote   Timestamp
	Wall     time.Time
	MaxDrift time.Duration
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("crdt: remote clock %s is %s ahead of local wall clock (max drift %s)",
		e.Remote, e.Remote.Time().Sub(e.Wall).Round(time.Millisecond), e.MaxDrift)
}

// Is makes errors.Is(err, ErrClockDrift) true.
func (e *DriftError) Is(target error) bool { return target == ErrClockDrift }

// Clock is a hybrid logical clock. It never reads the time itself: every
// call takes the wall clock as a value, which keeps it pure and testable.
//
// A Clock is monotonic: [Clock.Now] always returns a timestamp greater than
// every timestamp it returned or observed before, even when the wall clock
// goes backwards. To stay monotonic across restarts, persist [Clock.Last]
// with the data stamped by it and pass it back to [NewClock].
//
// Clock is not safe for concurrent use.
type Clock struct {
	last     Timestamp
	maxDrift time.Duration
}

// NewClock returns a clock that continues after last (zero for a new
// replica). A maxDrift of zero means [DefaultMaxDrift].
func NewClock(last Timestamp, maxDrift time.Duration) *Clock {
	if maxDrift <= 0 {
		maxDrift = DefaultMaxDrift
	}
	return &Clock{last: last, maxDrift: maxDrift}
}

// Last returns the greatest timestamp issued or observed so far.
func (c *Clock) Last() Timestamp { return c.last }

// MaxDrift returns the drift bound used by [Clock.Observe].
func (c *Clock) MaxDrift() time.Duration { return c.maxDrift }

// Now returns a new timestamp for a local event happening at wall time.
func (c *Clock) Now(wall time.Time) Timestamp {
	ms := clampMillis(wall.UnixMilli())
	switch {
	case ms > c.last.Millis():
		c.last = MakeTimestamp(ms, 0)
	case c.last.Logical() < maxLogical:
		c.last++
	default:
		// The logical counter is exhausted within this millisecond:
		// borrow the next millisecond rather than wrapping.
		c.last = MakeTimestamp(c.last.Millis()+1, 0)
	}
	return c.last
}

// Observe folds a remote timestamp into the clock so that later local
// events are ordered after it. A remote timestamp more than the maximum
// drift ahead of wall is rejected with a *DriftError and changes nothing.
func (c *Clock) Observe(remote Timestamp, wall time.Time) error {
	if err := c.Check(remote, wall); err != nil {
		return err
	}
	if remote > c.last {
		c.last = remote
	}
	return nil
}

// ObserveTrusted folds in a timestamp from a trusted source — the
// server's clock in the sync handshake — without the drift check, so a
// device whose wall clock is wrong still stamps new writes sanely.
func (c *Clock) ObserveTrusted(ts Timestamp) {
	if ts > c.last {
		c.last = ts
	}
}

// Check reports, without changing the clock, whether remote is acceptable
// at wall time: it returns a *DriftError if remote is too far ahead.
//
// The reference is the later of wall and the clock's own last reading: a
// clock that trusted a server's time is judged by it, not by a wrong wall.
func (c *Clock) Check(remote Timestamp, wall time.Time) error {
	if last := c.last.Time(); last.After(wall) {
		wall = last
	}
	if remote.Time().Sub(wall) > c.maxDrift {
		return &DriftError{Remote: remote, Wall: wall.UTC(), MaxDrift: c.maxDrift}
	}
	return nil
}

func clampMillis(ms int64) int64 {
	if ms < 0 {
		return 0
	}
	if ms > MaxMillis {
		return MaxMillis
	}
	return ms
}
