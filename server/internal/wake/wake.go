package wake

import (
	"context"
	"sync"
)

// Waiters are the waits in progress, per tenant. Create them with New.
type Waiters struct {
	mu     sync.Mutex
	closed bool
	waits  map[string]map[*waiter]struct{}
}

type waiter struct {
	seq  uint64
	ch   chan struct{}
	once sync.Once
	stop func() bool // unregisters the context's AfterFunc (Wait's; nil for Watch's)
}

func (w *waiter) wake() {
	w.once.Do(func() {
		close(w.ch)
		if w.stop != nil {
			w.stop()
		}
	})
}

// New returns an empty set of waiters.
func New() *Waiters {
	return &Waiters{waits: map[string]map[*waiter]struct{}{}}
}

// Wait returns a channel closed once the tenant's head passes seq, when
// ctx ends, or when the waiters close. head reads the tenant's head from
// storage; an error wakes the waiter at once (its next read reports it).
func (ws *Waiters) Wait(ctx context.Context, tenant string, seq uint64, head func() (uint64, error)) <-chan struct{} {
	w := &waiter{seq: seq, ch: make(chan struct{})}
	w.stop = context.AfterFunc(ctx, func() {
		ws.remove(tenant, w)
		w.wake()
	})
	ws.add(tenant, w, head, func() bool { return ctx.Err() != nil })
	return w.ch
}

// Watch is Wait ended by a call rather than a context: the channel is
// closed once the tenant's head passes seq or the waiters close, and
// cancel (to be called once the wait is no longer needed, whether it
// fired or not) unregisters it. A reader that waits once per read (a
// tailing connection, at every delivery) so spares a context and its
// callback each time.
func (ws *Waiters) Watch(tenant string, seq uint64, head func() (uint64, error)) (ch <-chan struct{}, cancel func()) {
	w := &waiter{seq: seq, ch: make(chan struct{})}
	ws.add(tenant, w, head, func() bool { return false })
	return w.ch, func() {
		select {
		case <-w.ch: // every wake-up unregisters it first
		default:
			ws.remove(tenant, w)
		}
	}
}

// add registers w, or wakes it at once: when the waiters are closed,
// the head read is already past its seq (or fails), or ended says so.
func (ws *Waiters) add(tenant string, w *waiter, head func() (uint64, error), ended func() bool) {
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		w.wake()
		return
	}
	if ws.waits[tenant] == nil {
		ws.waits[tenant] = map[*waiter]struct{}{}
	}
	ws.waits[tenant][w] = struct{}{}
	ws.mu.Unlock()
	if h, err := head(); err != nil || h > w.seq || ended() {
		ws.remove(tenant, w)
		w.wake()
	}
}

func (ws *Waiters) remove(tenant string, w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.waits[tenant], w)
	if len(ws.waits[tenant]) == 0 {
		delete(ws.waits, tenant)
	}
}

// Advanced wakes the tenant's waiters that head satisfies.
func (ws *Waiters) Advanced(tenant string, head uint64) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.waits[tenant] {
		if head > w.seq {
			delete(ws.waits[tenant], w)
			w.wake()
		}
	}
	if len(ws.waits[tenant]) == 0 {
		delete(ws.waits, tenant)
	}
}

// WakeAll wakes every waiter: they re-read and wait again.
func (ws *Waiters) WakeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.wakeAllLocked()
}

func (ws *Waiters) wakeAllLocked() {
	for t, m := range ws.waits {
		for w := range m {
			w.wake()
		}
		delete(ws.waits, t)
	}
}

// Close wakes every waiter; later waits return at once.
func (ws *Waiters) Close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	ws.wakeAllLocked()
}

// Closed reports whether Close was called.
func (ws *Waiters) Closed() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.closed
}

// Len returns the number of waits in progress.
func (ws *Waiters) Len() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	n := 0
	for _, m := range ws.waits {
		n += len(m)
	}
	return n
}
