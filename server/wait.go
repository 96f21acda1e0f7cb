package server

import (
	"context"
	"sync"
)

// waiters wakes readers waiting for a tenant's log to grow. Logs call
// advanced after each commit; Wait registers a channel.
type waiters struct {
	mu     sync.Mutex
	closed bool
	heads  map[string]uint64
	waits  map[string]map[*waiter]struct{}
}

type waiter struct {
	seq  uint64
	ch   chan struct{}
	once sync.Once
}

func (w *waiter) wake() { w.once.Do(func() { close(w.ch) }) }

func newWaiters() *waiters {
	return &waiters{heads: map[string]uint64{}, waits: map[string]map[*waiter]struct{}{}}
}

// wait returns a channel closed once the tenant's head passes seq. head
// is the head read from storage just before the call.
func (ws *waiters) wait(ctx context.Context, tenant string, seq, head uint64) <-chan struct{} {
	w := &waiter{seq: seq, ch: make(chan struct{})}
	ws.mu.Lock()
	if max(head, ws.heads[tenant]) > seq {
		ws.mu.Unlock()
		w.wake()
		return w.ch
	}
	if ws.waits[tenant] == nil {
		ws.waits[tenant] = map[*waiter]struct{}{}
	}
	ws.waits[tenant][w] = struct{}{}
	ws.mu.Unlock()
	context.AfterFunc(ctx, func() {
		ws.mu.Lock()
		delete(ws.waits[tenant], w)
		if len(ws.waits[tenant]) == 0 {
			delete(ws.waits, tenant)
		}
		ws.mu.Unlock()
		w.wake()
	})
	return w.ch
}

// advanced records a tenant's new head and wakes the waiters it satisfies.
func (ws *waiters) advanced(tenant string, head uint64) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if head > ws.heads[tenant] {
		ws.heads[tenant] = head
	}
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

// wakeAll wakes every waiter without recording a head: they re-read.
func (ws *waiters) wakeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for t, m := range ws.waits {
		for w := range m {
			w.wake()
		}
		delete(ws.waits, t)
	}
}

// closeAll wakes every waiter (the log is closing).
func (ws *waiters) closeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	for t, m := range ws.waits {
		for w := range m {
			w.wake()
		}
		delete(ws.waits, t)
	}
}
