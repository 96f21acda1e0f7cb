//go:build js

package bridge

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	gosync "sync"
	"syscall/js"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
	"github.com/unosync/uno/store/sqlitejs"
	usync "github.com/unosync/uno/sync"
)

// Error codes for errors that are not protocol errors (those keep their
// sync.Code, 1000–1999).
const (
	CodeInvalidName       = 2001
	CodeInvalidID         = 2002
	CodeInvalidValue      = 2003
	CodeTooLarge          = 2004
	CodeUnknownCollection = 2005
	CodeUnknownField      = 2006
	CodeKindMismatch      = 2007
	CodeNotFound          = 2008
	CodeClosed            = 2009
	CodeLocked            = 2010 // the database is open in another tab (set by the JS module)
	CodeBadArgument       = 2011
	CodeNoServer          = 2012
	CodeDocPath           = 2013 // a doc path leads nowhere an edit can go (crdt.ErrDocPath)
	CodeDocUnavailable    = 2014 // @automerge/automerge could not be loaded (client.ErrDocUnavailable)
	CodeNotSaved          = 2015 // IndexedDB did not keep a commit (sqlitejs.ErrNotSaved): nothing of the write is stored
	CodeInternal          = 2099
)

var clientCodes = []struct {
	err  error
	code int
}{
	{client.ErrRowTooLarge, int(usync.CodeRowTooLarge)}, // the code a server's refusal has too
	{client.ErrInvalidName, CodeInvalidName},
	{client.ErrInvalidID, CodeInvalidID},
	{client.ErrInvalidValue, CodeInvalidValue},
	{client.ErrTooLarge, CodeTooLarge},
	{client.ErrUnknownCollection, CodeUnknownCollection},
	{client.ErrUnknownField, CodeUnknownField},
	{client.ErrKindMismatch, CodeKindMismatch},
	{client.ErrNotFound, CodeNotFound},
	{client.ErrClosed, CodeClosed},
	{client.ErrNoServer, CodeNoServer},
	{crdt.ErrDocPath, CodeDocPath},
	{client.ErrDocUnavailable, CodeDocUnavailable},
	{sqlitejs.ErrNotSaved, CodeNotSaved},
}

// codeOf gives an error its numeric code.
func codeOf(err error) int {
	var se *usync.Error
	if errors.As(err, &se) {
		return int(se.Code)
	}
	var be badArg
	if errors.As(err, &be) {
		return CodeBadArgument
	}
	for _, c := range clientCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

type badArg struct{ msg string }

func (e badArg) Error() string { return e.msg }

func badArgf(format string, args ...any) error { return badArg{fmt.Sprintf(format, args...)} }

// state is the bridge's table of open clients and watches.
type state struct {
	mu      gosync.Mutex
	next    int
	clients map[int]*client.Client
	stops   map[int]context.CancelFunc // watches and status listeners
}

var st = &state{clients: map[int]*client.Client{}, stops: map[int]context.CancelFunc{}}

func (s *state) add(c *client.Client) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.clients[s.next] = c
	return s.next
}

func (s *state) get(id int) (*client.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, client.ErrClosed
	}
	return c, nil
}

func (s *state) stop(id int) {
	s.mu.Lock()
	cancel := s.stops[id]
	delete(s.stops, id)
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (s *state) listen(ctx context.Context) (context.Context, int) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.stops[s.next] = cancel
	return ctx, s.next
}

// Register installs globalThis.__uno and returns; the program must then
// keep running (select {}).
func Register() {
	api := js.Global().Get("Object").New()
	api.Set("open", js.FuncOf(jsOpen))
	api.Set("call", js.FuncOf(jsCall))
	api.Set("watch", js.FuncOf(jsWatch))
	api.Set("watchDoc", js.FuncOf(jsWatchDoc))
	api.Set("editDocWith", js.FuncOf(jsEditDocWith))
	api.Set("onStatus", js.FuncOf(jsOnStatus))
	api.Set("stop", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) > 0 {
			st.stop(args[0].Int())
		}
		return nil
	}))
	js.Global().Set("__uno", api)
}

// promise runs fn on its own goroutine and settles a Promise with its
// result (a JSON text, parsed on the JavaScript side) or its error (an
// object with code and message).
func promise(fn func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer executor.Release()
			v, err := fn()
			if err != nil {
				e := js.Global().Get("Object").New()
				e.Set("code", codeOf(err))
				e.Set("message", err.Error())
				reject.Invoke(e)
				return
			}
			b, err := json.Marshal(v)
			if err != nil {
				e := js.Global().Get("Object").New()
				e.Set("code", CodeInternal)
				e.Set("message", err.Error())
				reject.Invoke(e)
				return
			}
			resolve.Invoke(string(b))
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

// openOptions are open's options (JSON).
type openOptions struct {
	Name          string                    `json:"name"`
	Server        string                    `json:"server"`
	Token         string                    `json:"token"`
	Subscriptions []string                  `json:"subscriptions"`
	Where         map[string]map[string]any `json:"where"`
	ManualSync    bool                      `json:"manualSync"`
	HeartbeatMs   int                       `json:"heartbeatMs"`
	BackoffMaxMs  int                       `json:"backoffMaxMs"`
}

// jsOpen(optionsJSON, tokenSource?) → Promise<id>. tokenSource, if a
// function, returns a token or a Promise of one.
func jsOpen(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeString {
			return nil, badArgf("open: want options")
		}
		var o openOptions
		if err := json.Unmarshal([]byte(args[0].String()), &o); err != nil {
			return nil, badArgf("open: options: %v", err)
		}
		if o.Name == "" {
			return nil, badArgf("open: options.name is required (the database's name)")
		}
		cfg := client.Config{Path: "uno-" + o.Name + ".db", Server: o.Server, Token: o.Token,
			Subscriptions: o.Subscriptions, Where: o.Where, ManualSync: o.ManualSync,
			Heartbeat: time.Duration(o.HeartbeatMs) * time.Millisecond, BackoffMax: time.Duration(o.BackoffMaxMs) * time.Millisecond}
		if len(args) > 1 && args[1].Type() == js.TypeFunction {
			fn := args[1]
			cfg.TokenSource = func(ctx context.Context) (string, error) { return await(ctx, fn.Invoke()) }
		}
		c, err := client.Open(context.Background(), cfg)
		if err != nil {
			return nil, err
		}
		return st.add(c), nil
	})
}

// await waits for v (a Promise, or a plain value) and returns it as a
// string.
func await(ctx context.Context, v js.Value) (string, error) {
	v, err := awaitValue(ctx, v)
	if err != nil {
		return "", fmt.Errorf("token source: %w", err)
	}
	return v.String(), nil
}

// errRejected is a Promise's rejection.
type errRejected struct{ reason string }

func (e errRejected) Error() string { return e.reason }

// awaitValue waits for v if it is a Promise (a thenable) and returns its
// value; a plain value is returned as it is. It must run on a goroutine
// of its own, never in a js.FuncOf callback.
func awaitValue(ctx context.Context, v js.Value) (js.Value, error) {
	if v.Type() != js.TypeObject || v.Get("then").Type() != js.TypeFunction {
		return v, nil
	}
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var ok, fail js.Func
	ok = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: a[0]}
		return nil
	})
	fail = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: errRejected{js.Global().Get("String").Invoke(a[0]).String()}}
		return nil
	})
	v.Call("then", ok, fail)
	defer ok.Release()
	defer fail.Release()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

// jsCall(id, method, argsJSON) → Promise<JSON>.
func jsCall(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 3 {
			return nil, badArgf("call: want id, method, arguments")
		}
		c, err := st.get(args[0].Int())
		if err != nil {
			return nil, err
		}
		var a []json.RawMessage
		if err := json.Unmarshal([]byte(args[2].String()), &a); err != nil {
			return nil, badArgf("%s: arguments: %v", args[1].String(), err)
		}
		return call(c, args[0].Int(), args[1].String(), a)
	})
}

// arg decodes argument i into dst.
func arg(method string, a []json.RawMessage, i int, dst any) error {
	if i >= len(a) {
		return badArgf("%s: missing argument %d", method, i+1)
	}
	if err := json.Unmarshal(a[i], dst); err != nil {
		return badArgf("%s: argument %d: %v", method, i+1, err)
	}
	return nil
}

// op is one write of a transaction.
type op struct {
	Op         string                     `json:"op"` // put, patch, delete, increment, add, remove, doc
	Collection string                     `json:"collection"`
	ID         string                     `json:"id"`
	Doc        map[string]json.RawMessage `json:"doc"`
	Field      string                     `json:"field"`
	Delta      int64                      `json:"delta"`
	Member     json.RawMessage            `json:"member"`
	Edits      []docOp                    `json:"edits"` // of a doc field (op doc)
}

// prefetch reads the rows a transaction's ops touch, one query per
// collection rather than one per row: in the browser each read is a call
// from Go into the SQLite of the page. A collection whose prefetch fails
// (a bad name among its ops) is left to be read row by row, and the
// error to the op it is about, reported in order with the others.
func prefetch(tx *client.Tx, ops []op) {
	if len(ops) < 2 {
		return
	}
	ids := map[string][]string{}
	for i := range ops {
		ids[ops[i].Collection] = append(ids[ops[i].Collection], ops[i].ID)
	}
	for coll, rows := range ids {
		_ = tx.Prefetch(coll, rows...) // see above
	}
}

func (o *op) apply(tx *client.Tx) error {
	switch o.Op {
	case "put":
		return tx.Put(o.Collection, o.ID, o.Doc)
	case "patch":
		return tx.Patch(o.Collection, o.ID, o.Doc)
	case "delete":
		return tx.Delete(o.Collection, o.ID)
	case "increment":
		return tx.Increment(o.Collection, o.ID, o.Field, o.Delta)
	case "add":
		return tx.Add(o.Collection, o.ID, o.Field, o.Member)
	case "remove":
		return tx.Remove(o.Collection, o.ID, o.Field, o.Member)
	case "doc":
		e, err := tx.Doc(o.Collection, o.ID, o.Field)
		if err != nil {
			return err
		}
		for i := range o.Edits {
			if err := o.Edits[i].apply(e); err != nil {
				return fmt.Errorf("edit %d of %s.%s: %w", i+1, o.Collection, o.Field, err)
			}
		}
		return nil
	}
	return badArgf("transaction: unknown operation %q (want put, patch, delete, increment, add, remove or doc)", o.Op)
}

// docOp is one edit of a doc field: exactly one of its members is set.
// Paths are JSON arrays of keys and indexes (crdt.ParsePath); text
// positions count UTF-16 code units, as JavaScript strings do.
type docOp struct {
	Splice *struct {
		Path json.RawMessage `json:"path"`
		Pos  int             `json:"pos"`
		Del  int             `json:"del"`
		Text string          `json:"text"`
	} `json:"splice"`
	Put *struct {
		Path  json.RawMessage `json:"path"`
		Value json.RawMessage `json:"value"`
	} `json:"put"`
	Insert *struct {
		Path  json.RawMessage `json:"path"`
		Index int             `json:"index"`
		Value json.RawMessage `json:"value"`
	} `json:"insert"`
	Delete *struct {
		Path json.RawMessage `json:"path"`
	} `json:"delete"`
	Increment *struct {
		Path  json.RawMessage `json:"path"`
		Delta int64           `json:"delta"`
	} `json:"increment"`
}

func (o *docOp) apply(e *client.DocEdit) error {
	n := 0
	for _, set := range []bool{o.Splice != nil, o.Put != nil, o.Insert != nil, o.Delete != nil, o.Increment != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return badArgf("want one of splice, put, insert, delete or increment, got %d", n)
	}
	switch {
	case o.Splice != nil:
		p, err := docPath(o.Splice.Path)
		if err != nil {
			return err
		}
		return e.Splice(p, o.Splice.Pos, o.Splice.Del, o.Splice.Text)
	case o.Put != nil:
		p, err := docPath(o.Put.Path)
		if err != nil {
			return err
		}
		if o.Put.Value == nil {
			return badArgf("put %s: no value (null stores null)", p)
		}
		return e.Put(p, o.Put.Value)
	case o.Insert != nil:
		p, err := docPath(o.Insert.Path)
		if err != nil {
			return err
		}
		if o.Insert.Value == nil {
			return badArgf("insert %s: no value (null inserts null)", p)
		}
		return e.Insert(p, o.Insert.Index, o.Insert.Value)
	case o.Delete != nil:
		p, err := docPath(o.Delete.Path)
		if err != nil {
			return err
		}
		return e.Delete(p)
	default:
		p, err := docPath(o.Increment.Path)
		if err != nil {
			return err
		}
		return e.Increment(p, o.Increment.Delta)
	}
}

// errEditsFunc reports that the function giving a doc field's edits threw
// or returned something that is not edits; uno.js rethrows what it threw.
var errEditsFunc = errors.New("editDoc: the edits function failed")

// jsEditDocWith(id, collection, rowID, field, fn) → Promise<null>: fn
// receives the doc field's document (JSON) inside the transaction and
// returns its edits (JSON, an array of docOp), applied in that
// transaction, or null to abort it (errEditsFunc). fn runs on the
// transaction's goroutine, so it sees the document as the edits will
// change it: a change merged from the server cannot come between. fn may
// return a Promise of its result (uno-worker.js asks the page, where the
// application's function is): the transaction waits for it, holding the
// database's write lock.
func jsEditDocWith(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 5 || args[4].Type() != js.TypeFunction {
			return nil, badArgf("editDocWith: want id, collection, row id, field, function")
		}
		c, err := st.get(args[0].Int())
		if err != nil {
			return nil, err
		}
		ctx := context.Background()
		coll, rid, field, fn := args[1].String(), args[2].String(), args[3].String(), args[4]
		return nil, c.Collection(coll).EditDoc(ctx, rid, field, func(e *client.DocEdit) error {
			d, err := e.JSON()
			if err != nil {
				return err
			}
			out, err := call1(fn, string(d))
			if err != nil {
				return err
			}
			if out, err = awaitValue(ctx, out); err != nil {
				return fmt.Errorf("%w: %w", errEditsFunc, err)
			}
			if out.Type() != js.TypeString {
				return errEditsFunc
			}
			var edits []docOp
			if err := json.Unmarshal([]byte(out.String()), &edits); err != nil {
				return badArgf("editDoc: edits: %v", err)
			}
			for i := range edits {
				if err := edits[i].apply(e); err != nil {
					return fmt.Errorf("edit %d of %s.%s: %w", i+1, coll, field, err)
				}
			}
			return nil
		})
	})
}

// call1 calls fn with one argument; an exception becomes errEditsFunc.
func call1(fn js.Value, arg any) (v js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errEditsFunc, r)
		}
	}()
	return fn.Invoke(arg), nil
}

// docPath decodes a path; a missing one is the root.
func docPath(b json.RawMessage) (client.Path, error) {
	if len(b) == 0 || string(b) == "null" {
		return client.Path{}, nil
	}
	return crdt.ParsePath(b)
}

// doc is a row as JavaScript sees it: its fields' values, and the
// concurrent values of multi-value fields.
type doc struct {
	ID       string                       `json:"id"`
	Fields   map[string]json.RawMessage   `json:"fields"`
	Siblings map[string][]json.RawMessage `json:"siblings,omitempty"`
}

func docs(ds []client.Doc) []doc {
	out := make([]doc, len(ds))
	for i, d := range ds {
		out[i] = doc{ID: d.ID, Fields: d.Fields}
		for f, sibs := range d.Siblings {
			if out[i].Siblings == nil {
				out[i].Siblings = map[string][]json.RawMessage{}
			}
			for _, s := range sibs {
				out[i].Siblings[f] = append(out[i].Siblings[f], s.Value)
			}
		}
	}
	return out
}

// query is a Find or Watch query (JSON).
type query struct {
	Where []struct {
		Field string `json:"field"`
		Op    string `json:"op"`
		Value any    `json:"value"`
	} `json:"where"`
	OrderBy string `json:"orderBy"`
	Desc    bool   `json:"desc"`
	Limit   int    `json:"limit"`
}

func (q *query) client() client.Query {
	out := client.Query{OrderBy: q.OrderBy, Desc: q.Desc, Limit: q.Limit}
	for _, w := range q.Where {
		out.Where = append(out.Where, client.Where(w.Field, w.Op, w.Value))
	}
	return out
}

func call(c *client.Client, id int, method string, a []json.RawMessage) (any, error) {
	ctx := context.Background()
	switch method {
	case "tx":
		var ops []op
		if err := arg(method, a, 0, &ops); err != nil {
			return nil, err
		}
		return nil, c.Tx(ctx, func(tx *client.Tx) error {
			prefetch(tx, ops)
			for i := range ops {
				if err := ops[i].apply(tx); err != nil {
					return err
				}
			}
			return nil
		})
	case "get":
		var coll, rid string
		if err := errors.Join(arg(method, a, 0, &coll), arg(method, a, 1, &rid)); err != nil {
			return nil, err
		}
		d, err := c.Collection(coll).Get(ctx, rid)
		if err != nil {
			return nil, err
		}
		return docs([]client.Doc{d})[0], nil
	case "find":
		var coll string
		var q query
		if err := errors.Join(arg(method, a, 0, &coll), arg(method, a, 1, &q)); err != nil {
			return nil, err
		}
		ds, err := c.Collection(coll).Find(ctx, q.client())
		if err != nil {
			return nil, err
		}
		return docs(ds), nil
	case "readDoc", "text":
		var coll, rid, field string
		var path json.RawMessage
		if err := errors.Join(arg(method, a, 0, &coll), arg(method, a, 1, &rid), arg(method, a, 2, &field)); err != nil {
			return nil, err
		}
		if len(a) > 3 {
			path = a[3]
		}
		p, err := docPath(path)
		if err != nil {
			return nil, err
		}
		if method == "text" {
			return c.Collection(coll).Text(ctx, rid, field, p)
		}
		return c.Collection(coll).ReadDoc(ctx, rid, field, p)
	case "sync":
		return nil, c.Sync(ctx)
	case "pending":
		return c.Pending(ctx)
	case "hash":
		h, err := c.Hash(ctx)
		return hex.EncodeToString(h[:]), err
	case "status":
		return status(c.Status()), nil
	case "conflicts":
		var after uint64
		var limit int
		if err := errors.Join(arg(method, a, 0, &after), arg(method, a, 1, &limit)); err != nil {
			return nil, err
		}
		cs, err := c.Conflicts(ctx, after, limit)
		if cs == nil {
			cs = []store.ConflictEntry{} // [] in JavaScript, not null
		}
		return cs, err
	case "rejections":
		var after uint64
		var limit int
		if err := errors.Join(arg(method, a, 0, &after), arg(method, a, 1, &limit)); err != nil {
			return nil, err
		}
		rs, err := c.Rejections(ctx, after, limit)
		if rs == nil {
			rs = []store.Rejection{}
		}
		return rs, err
	case "close":
		st.mu.Lock()
		delete(st.clients, id)
		st.mu.Unlock()
		return nil, c.Close()
	}
	return nil, badArgf("unknown method %q", method)
}

// statusJSON is Status as JavaScript sees it.
type statusJSON struct {
	State     string `json:"state"` // offline, connecting, syncing, upToDate
	Pending   int    `json:"pending"`
	LastSync  int64  `json:"lastSync,omitempty"` // Unix ms
	Error     string `json:"error,omitempty"`
	ErrorCode int    `json:"errorCode,omitempty"`
	Bootstrap struct {
		Rows, TotalRows uint64
		Done            bool
	} `json:"bootstrap"`
}

func status(s client.Status) statusJSON {
	out := statusJSON{State: [...]string{"offline", "connecting", "syncing", "upToDate"}[s.State], Pending: s.Pending}
	if !s.LastSync.IsZero() {
		out.LastSync = s.LastSync.UnixMilli()
	}
	if s.Err != nil {
		out.Error, out.ErrorCode = s.Err.Error(), codeOf(s.Err)
	}
	out.Bootstrap.Rows, out.Bootstrap.TotalRows, out.Bootstrap.Done = s.Bootstrap.Rows, s.Bootstrap.TotalRows, s.Bootstrap.Done
	return out
}

// invoke calls an application callback; an exception it throws is
// reported on the console instead of ending the program.
func invoke(fn js.Value, args ...any) {
	defer func() {
		if r := recover(); r != nil {
			js.Global().Get("console").Call("error", fmt.Sprintf("uno: a callback threw: %v", r))
		}
	}()
	fn.Invoke(args...)
}

// jsWatch(id, collection, queryJSON, callback) → watch id. The callback
// receives the result (JSON) now and after each change; stop(watch id)
// ends it.
func jsWatch(_ js.Value, args []js.Value) any {
	if len(args) < 4 || args[3].Type() != js.TypeFunction {
		return -1
	}
	c, err := st.get(args[0].Int())
	if err != nil {
		return -1
	}
	var q query
	if err := json.Unmarshal([]byte(args[2].String()), &q); err != nil {
		return -1
	}
	ctx, wid := st.listen(context.Background())
	coll, cb := args[1].String(), args[3]
	go func() {
		w, err := c.Collection(coll).Watch(ctx, q.client())
		if err != nil {
			invoke(cb, js.Null(), err.Error(), codeOf(err))
			return
		}
		defer w.Close()
		for ds := range w.C {
			b, _ := json.Marshal(docs(ds))
			invoke(cb, string(b))
		}
	}()
	return wid
}

// jsOnStatus(id, callback) → listener id: the callback receives the sync
// status (JSON) now and at each change.
func jsOnStatus(_ js.Value, args []js.Value) any {
	if len(args) < 2 || args[1].Type() != js.TypeFunction {
		return -1
	}
	c, err := st.get(args[0].Int())
	if err != nil {
		return -1
	}
	ctx, lid := st.listen(context.Background())
	cb := args[1]
	go func() {
		// The first status is the current one; the subscription ends with
		// the listener's context.
		for s := range c.StatusChanges(ctx) {
			b, _ := json.Marshal(status(s))
			invoke(cb, string(b))
		}
	}()
	return lid
}

// docUpdate is a client.DocUpdate as JavaScript sees it.
type docUpdate struct {
	Doc   json.RawMessage `json:"doc"`
	Paths []client.Path   `json:"paths"`
}

// jsWatchDoc(id, collection, rowID, field, callback) → watch id. The
// callback receives the doc field's document and the paths that changed
// ({doc, paths}, JSON) now and after each change; on an error it
// receives (null, message, code) and the watch ends. stop(watch id) ends
// it.
func jsWatchDoc(_ js.Value, args []js.Value) any {
	if len(args) < 5 || args[4].Type() != js.TypeFunction {
		return -1
	}
	c, err := st.get(args[0].Int())
	if err != nil {
		return -1
	}
	ctx, wid := st.listen(context.Background())
	coll, rid, field, cb := args[1].String(), args[2].String(), args[3].String(), args[4]
	go func() {
		w, err := c.Collection(coll).WatchDoc(ctx, rid, field)
		if err != nil {
			invoke(cb, js.Null(), err.Error(), codeOf(err))
			return
		}
		defer w.Close()
		for u := range w.C {
			paths := u.Paths
			if paths == nil {
				paths = []client.Path{} // [] in JavaScript, not null
			}
			b, _ := json.Marshal(docUpdate{Doc: u.JSON, Paths: paths})
			invoke(cb, string(b))
		}
		if err := w.Err(); err != nil && ctx.Err() == nil {
			invoke(cb, js.Null(), err.Error(), codeOf(err))
		}
	}()
	return wid
}
