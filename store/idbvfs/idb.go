//go:build js

package idbvfs

import (
	"errors"
	"fmt"
	"syscall/js"
)

// The IndexedDB object stores.
const (
	filesStore  = "files"  // name → {size, chunk}
	chunksStore = "chunks" // [name, index] → Uint8Array
	idbVersion  = 1
)

// call calls method on v, returning a JavaScript exception as an error.
func call(v js.Value, method string, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	return v.Call(method, args...), nil
}

// await blocks until target fires the event ok (returning nil) or one of
// fail (returning an error made from target.error). It must not run on
// the event loop (in a js.FuncOf callback): see the package doc.
func await(target js.Value, ok string, fail ...string) error {
	done := make(chan error, 1)
	events := append([]string{ok}, fail...)
	funcs := make([]js.Func, len(events))
	for i, ev := range events {
		funcs[i] = js.FuncOf(func(js.Value, []js.Value) any {
			var err error
			if ev != ok {
				err = domError(ev, target.Get("error"))
			}
			select {
			case done <- err:
			default: // a second event; the first one counts
			}
			return nil
		})
		target.Set("on"+ev, funcs[i])
	}
	err := <-done
	for i, ev := range events {
		target.Set("on"+ev, js.Null())
		funcs[i].Release()
	}
	return err
}

// domError describes the DOMException e (possibly null) of event ev.
func domError(ev string, e js.Value) error {
	if ev == "abort" {
		if e.IsNull() || e.IsUndefined() {
			return ErrAborted
		}
		return fmt.Errorf("%w: %s: %s", ErrAborted, e.Get("name").String(), e.Get("message").String())
	}
	if e.IsNull() || e.IsUndefined() {
		return fmt.Errorf("idbvfs: IndexedDB %s event", ev)
	}
	return fmt.Errorf("idbvfs: IndexedDB %s: %s: %s", ev, e.Get("name").String(), e.Get("message").String())
}

// openIDB opens (creating or upgrading) the IndexedDB database name.
func openIDB(name string) (js.Value, error) {
	factory := js.Global().Get("indexedDB")
	if factory.IsUndefined() || factory.IsNull() {
		return js.Value{}, ErrNoIndexedDB
	}
	req, err := call(factory, "open", name, idbVersion)
	if err != nil {
		return js.Value{}, err
	}
	upgrade := js.FuncOf(func(js.Value, []js.Value) any {
		// Runs on the event loop: plain JavaScript calls only.
		db := req.Get("result")
		names := db.Get("objectStoreNames")
		for _, s := range []string{filesStore, chunksStore} {
			if !names.Call("contains", s).Bool() {
				db.Call("createObjectStore", s)
			}
		}
		return nil
	})
	defer upgrade.Release()
	req.Set("onupgradeneeded", upgrade)
	err = await(req, "success", "error", "blocked")
	req.Set("onupgradeneeded", js.Null())
	if err != nil {
		return js.Value{}, fmt.Errorf("open IndexedDB %s: %w", name, err)
	}
	return req.Get("result"), nil
}

// transaction starts a transaction on both object stores; readwrite ones
// are strict: complete means on disk.
func transaction(db js.Value, readwrite bool) (js.Value, error) {
	stores := js.ValueOf([]any{filesStore, chunksStore})
	if !readwrite {
		return call(db, "transaction", stores, "readonly")
	}
	return call(db, "transaction", stores, "readwrite", map[string]any{"durability": "strict"})
}

// chunkKey is the key of chunk i of file name.
func chunkKey(name string, i int64) js.Value {
	return js.ValueOf([]any{name, i})
}

// chunkRange is the key range of every chunk of file name.
func chunkRange(name string) (js.Value, error) {
	kr := js.Global().Get("IDBKeyRange")
	if kr.IsUndefined() {
		return js.Value{}, errors.New("idbvfs: no IDBKeyRange")
	}
	return call(kr, "bound", chunkKey(name, 0), js.ValueOf([]any{name, js.Global().Get("Infinity")}))
}
