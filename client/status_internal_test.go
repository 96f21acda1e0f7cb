package client

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// statusSubscribers returns how many StatusChanges subscriptions c keeps.
func statusSubscribers(c *Client) int {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return len(c.statusSubs)
}

// waitSubscribers waits until c keeps want subscriptions.
func waitSubscribers(t *testing.T, c *Client, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for statusSubscribers(c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d status subscribers, want %d", statusSubscribers(c), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitClosed drains ch until it is closed.
func waitClosed(t *testing.T, ch <-chan Status) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("status channel not closed")
		}
	}
}

func TestClient_StatusChanges_EndsWithContext(t *testing.T) {
	c, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "uno.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const n = 100
	chans := make([]<-chan Status, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		chans[i], cancels[i] = c.StatusChanges(ctx), cancel
		select {
		case st := <-chans[i]:
			if st.State != StateOffline {
				t.Fatalf("first status %+v, want offline", st)
			}
		default:
			t.Fatal("no current status on subscribing")
		}
	}
	if got := statusSubscribers(c); got != n {
		t.Fatalf("%d status subscribers, want %d", got, n)
	}
	for i := range n {
		cancels[i]()
		waitClosed(t, chans[i])
		waitSubscribers(t, c, n-1-i)
	}

	// A context that has ended subscribes to nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch := c.StatusChanges(ctx)
	if st, ok := <-ch; !ok || st.State != StateOffline {
		t.Fatalf("got %+v (%v), want the current status", st, ok)
	}
	waitClosed(t, ch)
	if got := statusSubscribers(c); got != 0 {
		t.Fatalf("%d status subscribers after subscribing with an ended context, want 0", got)
	}
}

func TestClient_StatusChanges_EndsWithClient(t *testing.T) {
	c, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "uno.db")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.StatusChanges(ctx)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
	if got := statusSubscribers(c); got != 0 {
		t.Fatalf("%d status subscribers after Close, want 0", got)
	}
	cancel() // the ended subscription's context may end later
	after := c.StatusChanges(context.Background())
	<-after // the last status
	waitClosed(t, after)
	if got := statusSubscribers(c); got != 0 {
		t.Fatalf("%d status subscribers after subscribing to a closed client, want 0", got)
	}
}
