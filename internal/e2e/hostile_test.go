package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
)

// logKinds runs fn against a server on each event log: the embedded
// SQLite one and Postgres.
func logKinds(t *testing.T, cfg server.Config, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, startServerWith(t, cfg)) })
	t.Run("postgres", func(t *testing.T) {
		c := cfg
		c.Log = newPG(t).log
		fn(t, startServerWith(t, c))
	})
}

// setOp is a register write as a hostile client would send it: whatever
// collection and value it likes.
func setOp(coll, row, field string, value []byte) crdt.Op {
	return crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: coll, Row: row, Field: field, CL: 1, Value: value}
}

func pushTx(site crdt.SiteID, seq uint64, ops ...crdt.Op) crdt.Tx {
	return crdt.Tx{Site: site, Seq: seq, Time: crdt.MakeTimestamp(time.Now().UnixMilli(), uint16(seq)), Ops: ops}
}

// Finding 1: a push with an invalid name, a value that is not JSON or a
// value nested too deep is refused with a coded Reject before it is
// appended; nothing of it reaches the log or any replica, the valid
// transaction after it is appended, and every other client keeps syncing.
func TestHostile_PoisonedPushIsRefused(t *testing.T) {
	logKinds(t, server.Config{}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a := e.client(t, "a", true)
		if err := a.Collection("todos").Put(ctx, "t1", map[string]any{"owner": "alice", "title": "ok"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, a)

		site := crdt.SiteID{0xba, 0xd1}
		p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
		p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{
			pushTx(site, 1, setOp("Bad Name", "r", "title", []byte(`"x"`))),
			pushTx(site, 2, setOp("todos", "t1", "title", []byte(`1,"owner":"victim"`))),
			pushTx(site, 3, setOp("todos", "t2", "title", []byte(deep))),
			pushTx(site, 4, setOp("todos", "", "title", []byte(`"no id"`))),
			pushTx(site, 5, setOp("todos", "t3", "title", []byte(`"fine"`))),
		}})
		rejected, ack := untilAck(t, ctx, p)
		if ack.HighWater != 5 {
			t.Fatalf("Ack %+v, want high-water 5", ack)
		}
		for seq := uint64(1); seq <= 4; seq++ {
			if rejected[seq] != usync.CodeMalformedTx {
				t.Errorf("tx %d: rejected with %v, want %v", seq, rejected[seq], usync.CodeMalformedTx)
			}
		}
		if _, ok := rejected[5]; ok {
			t.Error("the valid transaction was refused")
		}
		// Nothing of the refused transactions is in the log.
		chs, err := e.log.Read(ctx, "dev", 0, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if ch.Tx.Site == site && ch.Tx.Seq != 5 && len(ch.Tx.Ops) > 0 {
				t.Fatalf("refused tx %d was appended with its ops", ch.Tx.Seq)
			}
		}
		// Every replica keeps syncing: the old client, a fresh bootstrap,
		// and the query API; all equal the read model.
		syncCtx(t, a)
		b := e.client(t, "b", true)
		syncCtx(t, b)
		want, err := e.log.RowsHash(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client.Client{a, b} {
			if h, _ := c.Hash(ctx); h != want {
				t.Fatal("a replica differs from the read model")
			}
		}
		code, body := httpGet(t, e.http+"/v1/collections/todos", e.auth.Token)
		if code != 200 || !strings.Contains(body, `"owner":"alice"`) || strings.Contains(body, "victim") {
			t.Fatalf("query API: %d %s", code, body)
		}
	})
}

// untilAck reads a raw session's messages up to the next Ack and returns
// the codes of the transactions rejected before it, by seq.
func untilAck(t *testing.T, ctx context.Context, p *rawPeer) (map[uint64]usync.Code, *usync.Ack) {
	t.Helper()
	rejected := map[uint64]usync.Code{}
	for {
		switch m := p.recv(t, ctx).(type) {
		case *usync.Reject:
			rejected[m.Seq] = m.Code
		case *usync.Ack:
			return rejected, m
		}
	}
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// randomText is n bytes of incompressible JSON string content.
func randomText(n int) string {
	b := make([]byte, n*3/4)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Finding 3: rows near the value limit travel in byte-bounded messages: a
// fresh replica bootstraps and a live one receives five 900 KB rows (the
// server used to build one message of all of them and refuse it); a row
// pushed past the row limit is refused with CodeRowTooLarge and appends
// nothing of it.
func TestHostile_LargeRowsStaySyncable(t *testing.T) {
	logKinds(t, server.Config{}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		live := e.client(t, "live", true)
		syncCtx(t, live)
		a := e.client(t, "a", true)
		for i := range 5 {
			if err := a.Collection("files").Put(ctx, fmt.Sprint("f", i), map[string]any{"body": randomText(900 << 10)}); err != nil {
				t.Fatal(err)
			}
		}
		syncCtx(t, a)
		syncCtx(t, live)
		fresh := e.client(t, "fresh", true)
		syncCtx(t, fresh)
		want, _ := e.log.RowsHash(ctx, "dev")
		for name, c := range map[string]*client.Client{"live": live, "fresh": fresh} {
			if h, _ := c.Hash(ctx); h != want {
				t.Fatalf("%s replica differs from the read model", name)
			}
		}

		// Three 900 KB fields of one row: the third takes it over 2 MiB.
		site := crdt.SiteID{0xb1, 0x9}
		p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		head, _ := e.log.Head(ctx, "dev")
		var txs []crdt.Tx
		for i := range 3 {
			txs = append(txs, pushTx(site, uint64(i+1), setOp("files", "big", fmt.Sprint("part", i), []byte(`"`+randomText(900<<10)+`"`))))
		}
		p.send(t, ctx, &usync.Push{Txs: txs})
		var rej *usync.Reject
		for {
			m := p.recv(t, ctx)
			if r, ok := m.(*usync.Reject); ok {
				rej = r
				continue
			}
			if _, ok := m.(*usync.Ack); ok {
				break
			}
		}
		if rej == nil || rej.Seq != 3 || rej.Code != usync.CodeRowTooLarge {
			t.Fatalf("reject %+v, want tx 3 refused with CodeRowTooLarge", rej)
		}
		chs, err := e.log.Read(ctx, "dev", head, 10, 0)
		if err != nil || len(chs) != 3 || len(chs[2].Tx.Ops) != 0 {
			t.Fatalf("after the refusal the log holds %d new entries (%v); want 3, the last empty", len(chs), err)
		}
		syncCtx(t, live)
		want, _ = e.log.RowsHash(ctx, "dev")
		if h, _ := live.Hash(ctx); h != want {
			t.Fatal("the live replica differs after the large row")
		}
	})
}

// Finding 4: sockets that never say Hello lose their connection slot at
// the Hello deadline, so a real client gets in.
func TestHostile_HelloDeadline(t *testing.T) {
	const slots = 3
	e := startServerWith(t, server.Config{MaxConnections: slots, HelloTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	closed := make(chan websocket.StatusCode, slots)
	for range slots {
		ws, _, err := websocket.Dial(ctx, e.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		go func() {
			for { // an Error message, then the close
				if _, _, err := ws.Read(ctx); err != nil {
					closed <- websocket.CloseStatus(err)
					return
				}
			}
		}()
	}
	for range slots {
		select {
		case code := <-closed:
			if code != server.CloseCode(usync.CodeUnauthorized) {
				t.Fatalf("an idle socket closed with %v, want %v", code, server.CloseCode(usync.CodeUnauthorized))
			}
		case <-ctx.Done():
			t.Fatal("idle sockets kept their slots")
		}
	}
	c := e.client(t, "real", true)
	syncCtx(t, c)
}

// Finding 2: PrivateRead rows stay private on every read path: the query
// API, its live stream, and the Reject of a write to another user's row.
func TestHostile_PrivateRowsStayPrivate(t *testing.T) {
	logKinds(t, server.Config{Auth: userAuth{}, Rules: map[string]server.Rule{
		"notes": {Owner: "owner", PrivateRead: true},
	}}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		alice := userClient(t, e, "t1/alice", "", nil, nil)
		if err := alice.Collection("notes").Put(ctx, "a1", map[string]any{"owner": "alice", "text": "alice's secret"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, alice)
		bob := userClient(t, e, "t1/bob", "", nil, nil)
		if err := bob.Collection("notes").Put(ctx, "b1", map[string]any{"owner": "bob", "text": "bob's"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, bob)

		code, body := httpGet(t, e.http+"/v1/collections/notes", "t1/bob")
		if code != 200 || !strings.Contains(body, "bob's") || strings.Contains(body, "secret") {
			t.Fatalf("query API as bob: %d %s", code, body)
		}
		if code, body := httpGet(t, e.http+"/v1/collections/notes", "t1/"); code != http.StatusForbidden || strings.Contains(body, "secret") {
			t.Fatalf("query API with no user: %d %s", code, body)
		}

		// The live stream: bob's first result, then alice writes: nothing
		// of hers ever shows.
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		req, _ := http.NewRequestWithContext(sctx, "GET", e.http+"/v1/collections/notes?live=1", nil)
		req.Header.Set("Authorization", "Bearer t1/bob")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		events := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					events <- data
				}
			}
			close(events)
		}()
		first := <-events
		if !strings.Contains(first, "bob's") || strings.Contains(first, "secret") {
			t.Fatalf("live, first: %s", first)
		}
		if err := alice.Collection("notes").Put(ctx, "a2", map[string]any{"owner": "alice", "text": "another secret"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, alice)
		if err := bob.Collection("notes").Put(ctx, "b2", map[string]any{"owner": "bob", "text": "bob's second"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, bob)
		for ev := range events {
			if strings.Contains(ev, "secret") {
				t.Fatalf("live stream showed another user's row: %s", ev)
			}
			if strings.Contains(ev, "bob's second") {
				break
			}
		}

		// A write to alice's row is refused, and the Reject carries no
		// state of it.
		site := crdt.SiteID{0xb0, 0xb}
		p, _ := openRaw(t, ctx, e.url, site, "t1/bob", 16)
		p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{pushTx(site, 1, setOp("notes", "a1", "text", []byte(`"mine now"`)))}})
		rej := nextOf[*usync.Reject](t, ctx, p)
		if rej.Code != usync.CodeForbidden {
			t.Fatalf("reject %+v, want CodeForbidden", rej)
		}
		for _, r := range rej.Rows {
			if r.State != nil {
				t.Fatalf("the Reject revealed %s/%s", r.Collection, r.Row)
			}
		}
	})
}

// Finding 7: a live stream ends when its token expires, with an
// "expired" event.
func TestHostile_LiveStreamEndsAtExpiry(t *testing.T) {
	e := startJWTServer(t)
	ttl := 2 * time.Second
	tok := e.token("acme", ttl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http+"/v1/collections/notes?live=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("live stream: %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body) // ends when the server ends the stream
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "event: expired") {
		t.Fatalf("stream ended without an expired event: %q", body)
	}
	if now := time.Now().UnixMilli(); now < expiry(t, tok) {
		t.Fatalf("stream ended %d ms before the token expired", expiry(t, tok)-now)
	}
	// And the same token is refused afterwards, by the query API as by sync.
	if code, _ := httpGet(t, e.http+"/v1/collections/notes", tok); code != http.StatusUnauthorized {
		t.Fatalf("expired token on the query API: %d", code)
	}
}

// A schema declared to the server is enforced there too: undeclared
// collections and fields, and writes of another kind than declared, are
// refused with CodeInvalidTx; declared ones go through.
func TestHostile_DeclaredSchemaIsEnforced(t *testing.T) {
	schema := &crdt.Schema{Version: 1, Collections: []crdt.SchemaCollection{
		{Name: "todos", Fields: []crdt.SchemaField{{Name: "title", Kind: crdt.KindRegister}, {Name: "votes", Kind: crdt.KindCounter}}},
	}}
	e := startServerWith(t, server.Config{Schema: schema})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	site := crdt.SiteID{0x5c, 0x4e}
	p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{
		pushTx(site, 1, setOp("notes", "n1", "title", []byte(`"undeclared collection"`))),
		pushTx(site, 2, setOp("todos", "t1", "colour", []byte(`"undeclared field"`))),
		pushTx(site, 3, setOp("todos", "t1", "votes", []byte(`5`))), // a register write to a counter
		pushTx(site, 4, setOp("todos", "t1", "title", []byte(`"declared"`))),
	}})
	rejected, _ := untilAck(t, ctx, p)
	for seq := uint64(1); seq <= 3; seq++ {
		if rejected[seq] != usync.CodeInvalidTx {
			t.Errorf("tx %d: rejected with %v, want %v", seq, rejected[seq], usync.CodeInvalidTx)
		}
	}
	if _, ok := rejected[4]; ok {
		t.Error("a declared write was refused")
	}
}

// concurrentLog is a log that records how many appends run at once. Until
// two have overlapped, each append waits a moment for another to join
// it, so appends that may overlap do.
type concurrentLog struct {
	testLog
	rendezvous time.Duration // how long an append waits for company
	now, peak  atomic.Int32
}

func (l *concurrentLog) Append(ctx context.Context, tenant string, txs []crdt.Tx) ([]uint64, error) {
	n := l.now.Add(1)
	defer l.now.Add(-1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	deadline := time.Now().Add(l.rendezvous)
	for l.peak.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return l.testLog.Append(ctx, tenant, txs)
}

// Finding 6: concurrent large pushes are bounded by MaxPushBytes: with
// room for one compressed frame, four clients pushing 1.8 MB at once are
// decoded and appended one at a time, and all are acknowledged.
func TestHostile_LargePushesInFlightAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxBytes   int64
		wantPeak   int32 // at most; 0: more than one expected
		rendezvous time.Duration
	}{
		{"bounded", 16 << 20, 1, 500 * time.Millisecond},
		// Without the bound, appends overlap as soon as two arrive: wait
		// long for the second (a busy machine), never longer than that.
		{"unbounded", 1 << 30, 0, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := sqlitelog.Open(context.Background(), filepath.Join(t.TempDir(), "server.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			cl := &concurrentLog{testLog: l, rendezvous: tc.rendezvous}
			e := startServerWith(t, server.Config{Log: cl, MaxPushBytes: tc.maxBytes})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for i := range 4 {
				site := crdt.SiteID{0xf0, byte(i)}
				p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 4)
				tx := pushTx(site, 1,
					setOp("blobs", fmt.Sprint("a", i), "body", []byte(`"`+randomText(900<<10)+`"`)),
					setOp("blobs", fmt.Sprint("b", i), "body", []byte(`"`+randomText(900<<10)+`"`)))
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx}})
					if a := nextOf[*usync.Ack](t, ctx, p); a.HighWater != 1 {
						t.Errorf("Ack %+v", a)
					}
				}()
			}
			wg.Wait()
			peak := cl.peak.Load()
			t.Logf("MaxPushBytes %d: at most %d appends at once", tc.maxBytes, peak)
			if tc.wantPeak > 0 && peak > tc.wantPeak {
				t.Fatalf("%d appends ran at once, want at most %d", peak, tc.wantPeak)
			}
			if tc.wantPeak == 0 && peak < 2 {
				t.Fatalf("without the bound the appends never overlapped: the test shows nothing")
			}
		})
	}
}
