package wake

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

func fixed(h uint64) func() (uint64, error) { return func() (uint64, error) { return h, nil } }

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWaiters_Wait(t *testing.T) {
	ws := New()
	ctx := context.Background()
	if ch := ws.Wait(ctx, "a", 3, fixed(4)); !closed(ch) {
		t.Error("a wait below the head did not fire at once")
	}
	if ch := ws.Wait(ctx, "a", 3, func() (uint64, error) { return 0, errors.New("down") }); !closed(ch) {
		t.Error("a wait whose head read failed did not fire at once")
	}
	if n := ws.Len(); n != 0 {
		t.Fatalf("%d waiters left after waits that fired at once", n)
	}
	ch := ws.Wait(ctx, "a", 3, fixed(3))
	other := ws.Wait(ctx, "b", 3, fixed(3))
	ws.Advanced("a", 3)
	if closed(ch) {
		t.Fatal("woken by a head that does not pass its seq")
	}
	ws.Advanced("a", 4)
	if !closed(ch) || closed(other) {
		t.Fatal("Advanced woke the wrong waiters")
	}
	if n := ws.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
}

// A wake-up claiming a head above the real one must not be remembered:
// the next wait, with the real head, waits.
func TestWaiters_ForgedWakeUpIsNotRemembered(t *testing.T) {
	ws := New()
	ch := ws.Wait(context.Background(), "a", 5, fixed(5))
	ws.Advanced("a", 1_000_000)
	if !closed(ch) {
		t.Fatal("not woken")
	}
	if ch := ws.Wait(context.Background(), "a", 5, fixed(5)); closed(ch) {
		t.Fatal("a wait after a forged wake-up fired at once: readers would spin")
	}
}

// Waiters on a long-lived context leave nothing behind when appends wake
// them (an SSE stream waits thousands of times on one context).
func TestWaiters_NoLeakOnLongContext(t *testing.T) {
	ws := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range uint64(n) {
		ch := ws.Wait(ctx, "a", i, fixed(i))
		ws.Advanced("a", i+1)
		<-ch
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Each leaked registration would hold a closure and a waiter (~150
	// bytes): 200k of them, tens of MB.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("heap grew %d bytes over %d waits on one context", grew, n)
	}
	if n := ws.Len(); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
	ch := ws.Wait(ctx, "a", n, fixed(n))
	cancel()
	<-ch
	if n := ws.Len(); n != 0 {
		t.Fatalf("%d waiters left after the context ended", n)
	}
}

func TestWaiters_Close(t *testing.T) {
	ws := New()
	ch := ws.Wait(context.Background(), "a", 1, fixed(1))
	ws.Close()
	if !closed(ch) || !ws.Closed() {
		t.Fatal("Close did not wake the waiter")
	}
	if ch := ws.Wait(context.Background(), "a", 1, fixed(1)); !closed(ch) {
		t.Fatal("a wait after Close did not fire at once")
	}
}

func TestWaiters_Watch(t *testing.T) {
	ws := New()
	if ch, cancel := ws.Watch("a", 3, fixed(4)); !closed(ch) {
		t.Error("a watch below the head did not fire at once")
	} else {
		cancel()
	}
	if ch, _ := ws.Watch("a", 3, func() (uint64, error) { return 0, errors.New("down") }); !closed(ch) {
		t.Error("a watch whose head read failed did not fire at once")
	}
	if n := ws.Len(); n != 0 {
		t.Fatalf("%d waiters left after watches that fired at once", n)
	}
	ch, cancel := ws.Watch("a", 3, fixed(3))
	other, cancelOther := ws.Watch("b", 3, fixed(3))
	ws.Advanced("a", 3)
	if closed(ch) {
		t.Fatal("woken by a head that does not pass its seq")
	}
	ws.Advanced("a", 4)
	if !closed(ch) || closed(other) {
		t.Fatal("Advanced woke the wrong watches")
	}
	cancel() // after it fired: nothing to do
	if n := ws.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	// Cancelled before it fires, a watch is gone and stays unfired.
	cancelOther()
	if n := ws.Len(); n != 0 {
		t.Fatalf("Len = %d after the last watch was cancelled, want 0", n)
	}
	ws.Advanced("b", 4)
	if closed(other) {
		t.Fatal("a cancelled watch fired")
	}
	ch, _ = ws.Watch("c", 1, fixed(1))
	ws.Close()
	if !closed(ch) {
		t.Fatal("Close did not wake a watch")
	}
	if ch, cancel := ws.Watch("c", 1, fixed(1)); !closed(ch) {
		t.Fatal("a watch after Close did not fire at once")
	} else {
		cancel()
	}
}

// A watch costs a waiter and its channel: no context, no callback.
func TestWaiters_WatchAllocations(t *testing.T) {
	ws := New()
	ws.Watch("a", 1_000_000, fixed(0)) // keeps the tenant's set
	seq := uint64(0)
	n := testing.AllocsPerRun(1000, func() {
		ch, cancel := ws.Watch("a", seq, fixed(seq))
		ws.Advanced("a", seq+1)
		<-ch
		cancel()
		seq++
	})
	if n > 3 {
		t.Fatalf("a watch took %v allocations; want at most 3 (waiter, channel, cancel)", n)
	}
}
