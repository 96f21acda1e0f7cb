//go:build js

package crdt

import (
	"errors"
	"strings"
	"syscall/js"
	"testing"
)

// The browser binding loads @automerge/automerge on first use, once; a
// failed load is reported as ErrDocUnavailable (the hooks then fall back
// to what a build without the library does) and the next use tries again.
func TestAutomergeModule_LoadsOnceAndRetries(t *testing.T) {
	g := js.Global()
	orig := g.Get("__unoLoadAutomerge")
	automerge.mu.Lock()
	loaded := automerge.mod
	automerge.mod = js.Value{}
	automerge.mu.Unlock()
	t.Cleanup(func() {
		g.Set("__unoLoadAutomerge", orig)
		automerge.mu.Lock()
		automerge.mod = loaded
		automerge.mu.Unlock()
	})

	g.Set("__unoLoadAutomerge", js.Undefined())
	if _, err := OpenDocument(&DocState{}, SiteID{1}); !errors.Is(err, ErrDocUnavailable) {
		t.Fatalf("OpenDocument without a loader: %v, want ErrDocUnavailable", err)
	}

	calls, offline := 0, true
	loader := js.FuncOf(func(js.Value, []js.Value) any {
		calls++
		if offline {
			return g.Get("Promise").Call("reject", g.Get("Error").New("offline"))
		}
		return orig.Invoke()
	})
	defer loader.Release()
	g.Set("__unoLoadAutomerge", loader)
	_, err := OpenDocument(&DocState{}, SiteID{1})
	if !errors.Is(err, ErrDocUnavailable) || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("OpenDocument with a failing loader: %v, want ErrDocUnavailable saying offline", err)
	}
	if err := DocValidator([]byte("not checked")); err != nil {
		t.Errorf("DocValidator without the module: %v, want nil (headers are checked elsewhere)", err)
	}
	if _, ok := DocCompactor([][]byte{{1}, {2}}, nil); ok {
		t.Error("DocCompactor compacted without the module")
	}

	offline = false
	for range 3 {
		d, err := OpenDocument(&DocState{}, SiteID{1})
		if err != nil {
			t.Fatalf("OpenDocument once the loader works: %v", err)
		}
		d.Close()
	}
	if calls != 4 {
		t.Errorf("the loader was called %d times, want 4 (3 failed uses, then once)", calls)
	}
}

func TestDocument_IncrementBeyondJavaScriptIntegers(t *testing.T) {
	d, err := OpenDocument(&DocState{}, SiteID{1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Increment(Path{"n"}, 1<<53); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("increment by 2^53: %v, want ErrInvalidValue", err)
	}
	if err := d.Increment(Path{"n"}, 1<<53-1); err != nil {
		t.Fatalf("increment by 2^53-1: %v", err)
	}
	if got, err := d.Get(Path{"n"}); err != nil || string(got) != "9007199254740991" {
		t.Errorf("counter %s, %v; want 9007199254740991", got, err)
	}
}
