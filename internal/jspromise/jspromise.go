//go:build js

package jspromise

import (
	"errors"
	"syscall/js"
)

// Await waits for the Promise (or plain value) p to settle: its value, or
// its rejection as an error (Error).
func Await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: a[0]}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: Error(a[0])}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	js.Global().Get("Promise").Call("resolve", p).Call("then", ok, fail)
	r := <-ch
	return r.v, r.err
}

// Error is a thrown or rejected JavaScript value as an error: its message
// if it has one, else its string form.
func Error(v js.Value) error {
	if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
		return errors.New(v.Get("message").String())
	}
	return errors.New(js.Global().Get("String").Invoke(v).String())
}
