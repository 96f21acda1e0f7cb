//go:build cgo && (linux || darwin) && (amd64 || arm64)

package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/crdt/crdttest"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// changeOp is a doc change to field of coll/row in its first life.
func changeOp(coll, row, field string, changes []byte) crdt.Op {
	return crdt.Op{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: coll, Row: row, Field: field, CL: 1, Value: changes}
}

// reviveOp creates coll/row.
func reviveOp(coll, row string) crdt.Op {
	return crdt.Op{Type: crdt.OpRevive, Collection: coll, Row: row, CL: 1}
}

// pushAll pushes txs on a raw session and returns the codes of those
// refused and the Ack.
func pushAll(t *testing.T, ctx context.Context, p *rawPeer, txs ...crdt.Tx) (map[uint64]usync.Code, *usync.Ack) {
	t.Helper()
	p.send(t, ctx, &usync.Push{Txs: txs})
	return untilAck(t, ctx, p)
}

// queryDocs returns the rows of coll the query API serves, by ID.
func queryDocs(t *testing.T, e *env, coll string) map[string]map[string]any {
	t.Helper()
	code, body := httpGet(t, e.http+"/v1/collections/"+coll, e.auth.Token)
	var got struct{ Rows []map[string]any }
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("query API: %d %s", code, body)
	}
	out := map[string]map[string]any{}
	for _, r := range got.Rows {
		out[r["id"].(string)] = r
	}
	return out
}

// A doc field is served as its document, JSON: by the query API on both
// logs, and in Postgres's jsonb column, which SQL can query.
func TestDocField_ServedAsJSON(t *testing.T) {
	run := func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		site := crdt.SiteID{0xd0, 1}
		p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		ed := crdttest.NewEditor(t, site)
		ch := ed.Change(func(d *crdt.Document) error {
			if err := d.Splice(crdt.Path{"text"}, 0, 0, "hello world"); err != nil {
				return err
			}
			if err := d.Put(crdt.Path{"meta", "author"}, []byte(`"ada"`)); err != nil {
				return err
			}
			return d.Put(crdt.Path{"meta", "rev"}, []byte(`3`))
		})
		rejected, ack := pushAll(t, ctx, p, pushTx(site, 1, reviveOp("notes", "n1"), setOp("notes", "n1", "title", []byte(`"first"`)), changeOp("notes", "n1", "body", ch)))
		if len(rejected) > 0 || ack.HighWater != 1 {
			t.Fatalf("push refused: %v, %+v", rejected, ack)
		}
		code, body := httpGet(t, e.http+"/v1/collections/notes", e.auth.Token)
		if code != 200 {
			t.Fatalf("query API: %d %s", code, body)
		}
		var got struct {
			Rows []struct {
				ID    string `json:"id"`
				Title string `json:"title"`
				Body  struct {
					Text string `json:"text"`
					Meta struct {
						Author string `json:"author"`
						Rev    int    `json:"rev"`
					} `json:"meta"`
				} `json:"body"`
			} `json:"rows"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Rows) != 1 {
			t.Fatalf("query API body %s: %v", body, err)
		}
		if r := got.Rows[0]; r.Title != "first" || r.Body.Text != "hello world" || r.Body.Meta.Author != "ada" || r.Body.Meta.Rev != 3 {
			t.Fatalf("query API row %s: want body {text: hello world, meta: {author: ada, rev: 3}}", body)
		}
		// An edit shows in the next query.
		ch2 := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 5, 6, ", doc") })
		if rejected, _ := pushAll(t, ctx, p, pushTx(site, 2, changeOp("notes", "n1", "body", ch2))); len(rejected) > 0 {
			t.Fatalf("edit refused: %v", rejected)
		}
		if docs := queryDocs(t, e, "notes"); docs["n1"]["body"].(map[string]any)["text"] != "hello, doc" {
			t.Fatalf("after an edit the query API serves %v", docs)
		}
	}
	t.Run("sqlite", func(t *testing.T) { run(t, startServerWith(t, server.Config{})) })
	t.Run("postgres", func(t *testing.T) {
		pg := newPG(t)
		run(t, startServerWith(t, server.Config{Log: pg.log}))
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pg.app)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var id, author string
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('uno.tenant', 'dev', true)`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT id, doc->'body'->'meta'->>'author' FROM uno_rows
				WHERE coll = 'notes' AND doc->'body'->>'text' = 'hello, doc'`).Scan(&id, &author)
		})
		if err != nil || id != "n1" || author != "ada" {
			t.Fatalf("jsonb query on the doc's text: %q %q, %v; want n1 by ada", id, author, err)
		}
	})
}

// A doc change that skips one of its site's changes is refused with
// CodeMalformedTx and appended empty, so the site's sequence stays
// gap-free, and the transaction after it appends; a doc change authored
// by another actor than the pushing site fails the crdt rules
// (CodeMalformedTx, 1201) and appends nothing of its push; another client
// keeps syncing.
func TestHostile_DocChanges(t *testing.T) {
	logKinds(t, server.Config{}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a := e.client(t, "a", true)
		if err := a.Collection("todos").Put(ctx, "t1", map[string]any{"title": "ok"}); err != nil {
			t.Fatal(err)
		}
		syncCtx(t, a)

		site := crdt.SiteID{0xd0, 2}
		p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		ed := crdttest.NewEditor(t, site)
		ch1 := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 0, 0, "a") })
		ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 1, 0, "b") }) // never sent
		ch3 := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 2, 0, "c") })
		other := crdt.SiteID{0xd0, 3}
		foreign := crdttest.NewEditor(t, other).Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 0, 0, "x") })
		head, _ := e.log.Head(ctx, "dev")
		rejected, ack := pushAll(t, ctx, p,
			pushTx(site, 1, reviveOp("notes", "n1"), changeOp("notes", "n1", "body", ch1)),
			pushTx(site, 2, changeOp("notes", "n1", "body", ch3)), // skips change 2
			pushTx(site, 3, setOp("notes", "n1", "title", []byte(`"fine"`))),
		)
		if ack.HighWater != 3 {
			t.Fatalf("Ack %+v, want high-water 3", ack)
		}
		if len(rejected) != 1 || rejected[2] != usync.CodeMalformedTx {
			t.Fatalf("refused %v, want tx 2 with %v (%d)", rejected, usync.CodeMalformedTx, usync.CodeMalformedTx)
		}
		chs, err := e.log.Read(ctx, "dev", head, 100, 0)
		if err != nil || len(chs) != 3 {
			t.Fatalf("the log holds %d new entries (%v), want 3: one per transaction", len(chs), err)
		}
		for i, ch := range chs {
			if ch.Seq != head+uint64(i)+1 || ch.Tx.Site != site || ch.Tx.Seq != uint64(i)+1 {
				t.Fatalf("entry %d is %s/%d at %d", i, ch.Tx.Site, ch.Tx.Seq, ch.Seq)
			}
			if refused := ch.Tx.Seq == 2; refused != (len(ch.Tx.Ops) == 0) {
				t.Fatalf("tx %d appended with %d ops", ch.Tx.Seq, len(ch.Tx.Ops))
			}
		}
		// A change by another actor than the pushing site fails the
		// crdt rules, checked as the push decodes: the session closes
		// with CodeMalformedTx and nothing of the push is appended.
		p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{
			pushTx(site, 4, setOp("notes", "n1", "title", []byte(`"never"`))),
			pushTx(site, 5, reviveOp("notes", "n2"), changeOp("notes", "n2", "body", foreign)),
		}})
		for { // Changes the session sent before may come first
			m := p.recv(t, ctx)
			if _, ok := m.(*usync.Changes); ok {
				continue
			}
			if em, ok := m.(*usync.ErrorMessage); !ok || em.Code != 1201 {
				t.Fatalf("got %T %+v, want an Error with code 1201", m, m)
			}
			break
		}
		if _, _, err := p.ws.Read(ctx); websocket.CloseStatus(err) != server.CloseCode(usync.CodeMalformedTx) {
			t.Fatalf("closed with %v, want %v", websocket.CloseStatus(err), server.CloseCode(usync.CodeMalformedTx))
		}
		if hw, err := e.log.HighWater(ctx, "dev", site); err != nil || hw != 3 {
			t.Fatalf("high-water after the foreign change: %d, %v; want 3", hw, err)
		}
		if h, _ := e.log.Head(ctx, "dev"); h != head+3 {
			t.Fatalf("head %d after the foreign change, want %d", h, head+3)
		}
		// The document holds change 1 only; the site can still send 2
		// then 3.
		docs := queryDocs(t, e, "notes")
		if body, _ := docs["n1"]["body"].(map[string]any); len(docs) != 1 || body["text"] != "a" || docs["n1"]["title"] != "fine" {
			t.Fatalf("query API after the refusals: %v; want n1 alone, its body {text: a}", docs)
		}
		syncCtx(t, a)
		b := e.client(t, "b", true)
		syncCtx(t, b)
		want, _ := e.log.RowsHash(ctx, "dev")
		for name, c := range map[string]interface {
			Hash(context.Context) ([32]byte, error)
		}{"a": a, "b": b} {
			if h, _ := c.Hash(ctx); h != want {
				t.Fatalf("replica %s differs from the read model", name)
			}
		}
	})
}

// A doc change that depends on a change the document does not have
// passes every check of its own, but Automerge would hold it back (and
// every change after it) forever: the server refuses it with a code and
// the rest of the push appends.
func TestHostile_DocChangeWithUnknownDependency(t *testing.T) {
	logKinds(t, server.Config{}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		site := crdt.SiteID{0xd0, 4}
		p, _ := openRaw(t, ctx, e.url, site, e.auth.Token, 16)
		ed := crdttest.NewEditor(t, site)
		ch1 := ed.Change(func(d *crdt.Document) error { return d.Splice(crdt.Path{"text"}, 0, 0, "a") })
		bogus, _ := crdttest.EmptyChange(site, 2, crdt.ChangeHash{0xba, 0xd})
		rejected, ack := pushAll(t, ctx, p,
			pushTx(site, 1, reviveOp("notes", "n1"), changeOp("notes", "n1", "body", ch1)),
			pushTx(site, 2, changeOp("notes", "n1", "body", bogus)),
			pushTx(site, 3, setOp("notes", "n1", "title", []byte(`"fine"`))),
		)
		if ack.HighWater != 3 || len(rejected) != 1 || rejected[2] != usync.CodeMalformedTx {
			t.Fatalf("Ack %+v, refused %v: want high-water 3 and tx 2 refused with %d", ack, rejected, usync.CodeMalformedTx)
		}
		// The document has the first change, and a replica that reads the
		// rows gets the same state as the log's read model.
		c := e.client(t, "c", true)
		syncCtx(t, c)
		if s, err := c.Collection("notes").Text(ctx, "n1", "body", crdt.Path{"text"}); err != nil || s != "a" {
			t.Fatalf("text %q, %v; want a", s, err)
		}
		want, _ := e.log.RowsHash(ctx, "dev")
		if h, _ := c.Hash(ctx); h != want {
			t.Error("the client's hash differs from the read model's")
		}
	})
}
