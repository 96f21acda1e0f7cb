package crdt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/unosync/uno/crdt"
	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestMakeTimestamp(t *testing.T) {
	tests := []struct {
		name    string
		ms      int64
		logical uint16
		want    uint64
	}{
		{"zero", 0, 0, 0},
		{"logical only", 0, 7, 7},
		{"max logical", 0, 0xFFFF, 0xFFFF},
		{"one ms", 1, 0, 1 << 16},
		{"ms and logical", 1, 1, 1<<16 | 1},
		{"a real time", t0.UnixMilli(), 3, uint64(t0.UnixMilli())<<16 | 3},
		{"max", crdt.MaxMillis, 0xFFFF, 1<<64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := crdt.MakeTimestamp(tt.ms, tt.logical)
			if uint64(ts) != tt.want {
				t.Errorf("MakeTimestamp(%d, %d) = %#x, want %#x", tt.ms, tt.logical, uint64(ts), tt.want)
			}
			if ts.Millis() != tt.ms || ts.Logical() != tt.logical {
				t.Errorf("Millis, Logical = %d, %d; want %d, %d", ts.Millis(), ts.Logical(), tt.ms, tt.logical)
			}
			if got := ts.Time(); !got.Equal(time.UnixMilli(tt.ms)) || got.Location() != time.UTC {
				t.Errorf("Time() = %v, want %v in UTC", got, time.UnixMilli(tt.ms).UTC())
			}
		})
	}
}

func TestMakeTimestamp_OutOfRangePanics(t *testing.T) {
	for _, ms := range []int64{-1, crdt.MaxMillis + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MakeTimestamp(%d, 0) did not panic", ms)
				}
			}()
			crdt.MakeTimestamp(ms, 0)
		}()
	}
}

func TestTimestamp_Order(t *testing.T) {
	// Timestamps compare as integers: milliseconds first, then logical.
	ordered := []crdt.Timestamp{
		crdt.MakeTimestamp(0, 0),
		crdt.MakeTimestamp(0, 0xFFFF),
		crdt.MakeTimestamp(1, 0),
		crdt.MakeTimestamp(t0.UnixMilli(), 0),
		crdt.MakeTimestamp(t0.UnixMilli(), 1),
		crdt.MakeTimestamp(t0.UnixMilli()+1, 0),
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1] >= ordered[i] {
			t.Errorf("%s >= %s", ordered[i-1], ordered[i])
		}
	}
}

func TestTimestamp_String(t *testing.T) {
	tests := []struct {
		ts   crdt.Timestamp
		want string
	}{
		{crdt.MakeTimestamp(0, 0), "1970-01-01T00:00:00.000Z+0"},
		{crdt.MakeTimestamp(t0.UnixMilli()+7, 42), "2025-06-01T12:00:00.007Z+42"},
		{crdt.MakeTimestamp(t0.UnixMilli(), 0xFFFF), "2025-06-01T12:00:00.000Z+65535"},
	}
	for _, tt := range tests {
		if got := tt.ts.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestClock_Now(t *testing.T) {
	ms := t0.UnixMilli()
	tests := []struct {
		name  string
		last  crdt.Timestamp
		wall  time.Time
		want  crdt.Timestamp
		after crdt.Timestamp // what a second Now at the same wall returns
	}{
		{"new clock takes the wall", 0, t0, crdt.MakeTimestamp(ms, 0), crdt.MakeTimestamp(ms, 1)},
		{"wall ahead", crdt.MakeTimestamp(ms-5, 9), t0, crdt.MakeTimestamp(ms, 0), crdt.MakeTimestamp(ms, 1)},
		{"same millisecond", crdt.MakeTimestamp(ms, 3), t0, crdt.MakeTimestamp(ms, 4), crdt.MakeTimestamp(ms, 5)},
		{"sub-millisecond wall", crdt.MakeTimestamp(ms, 3), t0.Add(999 * time.Microsecond), crdt.MakeTimestamp(ms, 4), crdt.MakeTimestamp(ms, 5)},
		{"wall went back an hour", crdt.MakeTimestamp(ms, 3), t0.Add(-time.Hour), crdt.MakeTimestamp(ms, 4), crdt.MakeTimestamp(ms, 5)},
		{"logical exhausted borrows next ms", crdt.MakeTimestamp(ms, 0xFFFF), t0, crdt.MakeTimestamp(ms+1, 0), crdt.MakeTimestamp(ms+1, 1)},
		{"logical exhausted, wall behind", crdt.MakeTimestamp(ms, 0xFFFF), t0.Add(-time.Minute), crdt.MakeTimestamp(ms+1, 0), crdt.MakeTimestamp(ms+1, 1)},
		{"wall before the epoch", 0, time.UnixMilli(-5000), crdt.MakeTimestamp(0, 1), crdt.MakeTimestamp(0, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crdt.NewClock(tt.last, 0)
			if got := c.Now(tt.wall); got != tt.want {
				t.Errorf("Now() = %s, want %s", got, tt.want)
			}
			if got := c.Now(tt.wall); got != tt.after {
				t.Errorf("second Now() = %s, want %s", got, tt.after)
			}
			if c.Last() != tt.after {
				t.Errorf("Last() = %s, want %s", c.Last(), tt.after)
			}
		})
	}
}

// TestClock_NowOverflowsLogical issues more than 2^16 timestamps within one
// wall millisecond: they stay strictly increasing.
func TestClock_NowOverflowsLogical(t *testing.T) {
	c := crdt.NewClock(0, 0)
	prev := c.Now(t0)
	for range 3 << 16 {
		next := c.Now(t0)
		if next <= prev {
			t.Fatalf("Now() = %s after %s", next, prev)
		}
		prev = next
	}
	// 1 + 3·2^16 events fill three milliseconds and start a fourth.
	if want := crdt.MakeTimestamp(t0.UnixMilli()+3, 0); prev != want {
		t.Fatalf("after 1+3·2^16 events in one wall ms: %s, want %s", prev, want)
	}
	// The wall catching up continues from there, never going back.
	if got := c.Now(t0.Add(time.Millisecond)); got <= prev {
		t.Fatalf("Now() = %s after %s", got, prev)
	}
}

// TestClock_Restart: a clock rebuilt from the persisted Last continues after
// it, even when the wall clock went back in between.
func TestClock_Restart(t *testing.T) {
	c := crdt.NewClock(0, 0)
	for i := range 10 {
		c.Now(t0.Add(time.Duration(i) * time.Millisecond))
	}
	if err := c.Observe(crdt.MakeTimestamp(t0.Add(time.Hour).UnixMilli(), 5), t0); err != nil {
		t.Fatal(err)
	}
	persisted := c.Last()

	restarted := crdt.NewClock(persisted, 0)
	if restarted.Last() != persisted {
		t.Fatalf("Last() = %s, want %s", restarted.Last(), persisted)
	}
	if got := restarted.Now(t0.Add(-24 * time.Hour)); got <= persisted {
		t.Fatalf("Now() after restart = %s, want > %s", got, persisted)
	}
}

func TestClock_Observe(t *testing.T) {
	ms := t0.UnixMilli()
	tests := []struct {
		name   string
		last   crdt.Timestamp
		remote crdt.Timestamp
		want   crdt.Timestamp // Last after Observe
	}{
		{"remote ahead moves the clock", crdt.MakeTimestamp(ms, 0), crdt.MakeTimestamp(ms+3600_000, 2), crdt.MakeTimestamp(ms+3600_000, 2)},
		{"remote behind changes nothing", crdt.MakeTimestamp(ms, 5), crdt.MakeTimestamp(ms-1, 9), crdt.MakeTimestamp(ms, 5)},
		{"remote equal changes nothing", crdt.MakeTimestamp(ms, 5), crdt.MakeTimestamp(ms, 5), crdt.MakeTimestamp(ms, 5)},
		{"same ms, higher logical", crdt.MakeTimestamp(ms, 5), crdt.MakeTimestamp(ms, 6), crdt.MakeTimestamp(ms, 6)},
		{"remote with exhausted logical", 0, crdt.MakeTimestamp(ms, 0xFFFF), crdt.MakeTimestamp(ms, 0xFFFF)},
		{"exactly the max drift ahead is accepted", 0, crdt.MakeTimestamp(ms+crdt.DefaultMaxDrift.Milliseconds(), 0xFFFF), crdt.MakeTimestamp(ms+crdt.DefaultMaxDrift.Milliseconds(), 0xFFFF)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crdt.NewClock(tt.last, 0)
			if err := c.Observe(tt.remote, t0); err != nil {
				t.Fatalf("Observe(%s) = %v", tt.remote, err)
			}
			if c.Last() != tt.want {
				t.Fatalf("Last() = %s, want %s", c.Last(), tt.want)
			}
			if now := c.Now(t0); now <= tt.remote || now <= tt.last {
				t.Fatalf("Now() = %s, not after remote %s and last %s", now, tt.remote, tt.last)
			}
		})
	}
}

func TestClock_ObserveDrift(t *testing.T) {
	ms := t0.UnixMilli()
	tests := []struct {
		name     string
		maxDrift time.Duration
		remote   crdt.Timestamp
		wantErr  bool
	}{
		{"default is 24h: 24h ahead ok", 0, crdt.MakeTimestamp(ms+24*3600_000, 0), false},
		{"default is 24h: 24h+1ms ahead rejected", 0, crdt.MakeTimestamp(ms+24*3600_000+1, 0), true},
		{"negative means default", -time.Hour, crdt.MakeTimestamp(ms+24*3600_000+1, 0), true},
		{"configured 1s: 1s ahead ok", time.Second, crdt.MakeTimestamp(ms+1000, 0xFFFF), false},
		{"configured 1s: 1001ms ahead rejected", time.Second, crdt.MakeTimestamp(ms+1001, 0), true},
		{"configured 72h: 48h ahead ok", 72 * time.Hour, crdt.MakeTimestamp(ms+48*3600_000, 0), false},
		{"year 9999 rejected", 72 * time.Hour, crdt.MakeTimestamp(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), 0), true},
		{"max timestamp rejected", 0, crdt.MakeTimestamp(crdt.MaxMillis, 0xFFFF), true},
		{"far past accepted", 0, crdt.MakeTimestamp(0, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crdt.NewClock(0, tt.maxDrift)
			last := c.Now(t0)
			err := c.Observe(tt.remote, t0)
			if checkErr := c.Check(tt.remote, t0); (checkErr == nil) != (err == nil) {
				t.Errorf("Check = %v but Observe = %v", checkErr, err)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Observe(%s) = %v", tt.remote, err)
				}
				return
			}
			if !errors.Is(err, crdt.ErrClockDrift) {
				t.Fatalf("Observe(%s) = %v, want ErrClockDrift", tt.remote, err)
			}
			var de *crdt.DriftError
			if !errors.As(err, &de) {
				t.Fatalf("Observe error %T is not a *DriftError", err)
			}
			wantDrift := tt.maxDrift
			if wantDrift <= 0 {
				wantDrift = crdt.DefaultMaxDrift
			}
			if de.Remote != tt.remote || !de.Wall.Equal(t0) || de.MaxDrift != wantDrift || c.MaxDrift() != wantDrift {
				t.Errorf("DriftError = %+v (clock max drift %s), want remote %s, wall %s, max drift %s", de, c.MaxDrift(), tt.remote, t0, wantDrift)
			}
			if de.Error() == "" {
				t.Error("empty error message")
			}
			if c.Last() != last {
				t.Errorf("rejected Observe moved the clock: Last() = %s, want %s", c.Last(), last)
			}
		})
	}
}

// TestClock_Property drives one clock with random Now, Observe and restart
// calls at random wall times (going backwards too): every Now is strictly
// greater than every earlier Now and every accepted remote timestamp, and a
// rejected Observe changes nothing.
func TestClock_Property(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxDrift := time.Duration(rapid.IntRange(1, 72).Draw(t, "maxDriftH")) * time.Hour
		c := crdt.NewClock(0, maxDrift)
		wall := t0
		var high crdt.Timestamp // greatest issued or accepted so far
		// Steps in ms: mostly small, sometimes large jumps either way.
		step := rapid.OneOf(rapid.Int64Range(-3, 3), rapid.Int64Range(-48*3600_000, 48*3600_000))
		t.Repeat(map[string]func(*rapid.T){
			"now": func(t *rapid.T) {
				wall = wall.Add(time.Duration(step.Draw(t, "wallStep")) * time.Millisecond)
				got := c.Now(wall)
				if got <= high {
					t.Fatalf("Now(%s) = %s, not after %s", wall, got, high)
				}
				high = got
			},
			"burst": func(t *rapid.T) {
				// Many events in one wall millisecond.
				n := rapid.IntRange(1, 1<<17).Draw(t, "burst")
				for range n {
					got := c.Now(wall)
					if got <= high {
						t.Fatalf("Now(%s) = %s, not after %s", wall, got, high)
					}
					high = got
				}
			},
			"observe": func(t *rapid.T) {
				wall = wall.Add(time.Duration(step.Draw(t, "wallStep")) * time.Millisecond)
				ahead := time.Duration(rapid.Int64Range(-maxDrift.Milliseconds()*2, maxDrift.Milliseconds()*2).Draw(t, "aheadMS")) * time.Millisecond
				remote := crdt.MakeTimestamp(wall.Add(ahead).UnixMilli(), rapid.Uint16().Draw(t, "logical"))
				before := c.Last()
				err := c.Observe(remote, wall)
				// The reference is the later of the wall and the clock's own
				// last reading (see Clock.Check).
				ref := wall
				if lt := before.Time(); lt.After(ref) {
					ref = lt
				}
				if tooFar := remote.Time().Sub(ref) > maxDrift; tooFar != (err != nil) {
					t.Fatalf("Observe(%s) at %s with max drift %s = %v", remote, wall, maxDrift, err)
				}
				if err != nil {
					if !errors.Is(err, crdt.ErrClockDrift) || c.Last() != before {
						t.Fatalf("rejected Observe: err %v, Last %s (was %s)", err, c.Last(), before)
					}
					return
				}
				high = max(high, remote)
				if c.Last() != high {
					t.Fatalf("Last() = %s, want %s", c.Last(), high)
				}
			},
			"restart": func(*rapid.T) {
				c = crdt.NewClock(c.Last(), maxDrift)
			},
		})
	})
}
