package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// logBuffer collects a server's JSON log records.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// text returns everything logged so far.
func (l *logBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the records logged so far.
func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.text()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// find returns the records with msg whose attributes include want's
// (numbers compared as JSON decodes them).
func find(recs []map[string]any, msg string, want map[string]any) []map[string]any {
	var out []map[string]any
next:
	for _, r := range recs {
		if r["msg"] != msg {
			continue
		}
		for k, v := range want {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// The server's log tells an operator who connected and how each session
// ended, which writes and authentications it refused and why, and never
// holds a token or a row's value.
func TestLog_SessionsAndRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buf := &logBuffer{}
	e := startServerWith(t, server.Config{
		Logger: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Rules:  map[string]server.Rule{"plans": {ReadOnly: true}},
	})
	const secret = "s3cr3t-row-value"

	a := e.client(t, "a", true)
	put(t, a, "todos", "t1", map[string]any{"title": secret})
	put(t, a, "plans", "p1", map[string]any{"title": secret}) // refused: plans is read-only
	// A malformed value: its refusal quotes it to the client.
	site := crdt.SiteID{0xab}
	p := hello(t, ctx, e, usync.Hello{Site: site})
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{{Site: site, Seq: 1, Time: crdt.MakeTimestamp(time.Now().UnixMilli(), 0), Ops: []crdt.Op{
		{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "todos", Row: "t9", Field: "title", CL: 1, Value: []byte("not json " + secret)},
	}}}})
	if r := nextOf[*usync.Reject](t, ctx, p); r.Code != usync.CodeMalformedTx || !strings.Contains(r.Reason, secret) {
		t.Fatalf("Reject %+v, want CodeMalformedTx quoting the value", r)
	}
	nextOf[*usync.Ack](t, ctx, p)
	p.ws.Close(websocket.StatusNormalClosure, "")
	// A token the server does not know.
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	bad := &rawPeer{ws: ws, codec: p.codec}
	badToken := "dev_" + secret
	bad.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: crdt.SiteID{0xcd}, Token: badToken})
	closedWith(t, ctx, bad, usync.CodeUnauthorized)

	// Sessions end asynchronously to the clients: wait for their records.
	siteA := ""
	var recs []map[string]any
	waitFor(t, func() bool {
		recs = buf.records(t)
		return len(find(recs, "session end", map[string]any{"tenant": "dev"})) >= 3 &&
			len(find(recs, "authentication refused", nil)) == 1
	})
	starts := find(recs, "session start", map[string]any{"tenant": "dev", "user": "dev"})
	if len(starts) != 3 {
		t.Fatalf("%d session start records of tenant dev, user dev, want 3:\n%s", len(starts), buf.text())
	}
	for _, r := range starts {
		if r["level"] != "INFO" || r["site"] == "" || r["remote"] == nil || r["cursor"] == nil {
			t.Errorf("session start %v: want INFO with site, remote and cursor", r)
		}
	}
	siteA = fmt.Sprint(starts[0]["site"])
	for _, r := range find(recs, "session end", map[string]any{"tenant": "dev"}) {
		if r["level"] != "INFO" || r["user"] != "dev" || r["close_code"] == nil || r["duration"] == nil || r["bytes_in"] == nil || r["bytes_out"] == nil {
			t.Errorf("session end %v: want INFO with user, close code, duration and bytes", r)
		}
	}
	if ends := find(recs, "session end", map[string]any{"site": site.String(), "close_code": 1000}); len(ends) != 1 {
		t.Errorf("raw session's end: %v, want one with close code 1000", ends)
	}
	if r := find(recs, "write refused", map[string]any{"tenant": "dev", "user": "dev", "site": siteA, "seq": 2, "code": int(usync.CodeForbidden)}); len(r) != 1 || r[0]["level"] != "WARN" || r[0]["reason"] == "" {
		t.Errorf("write refused records %v, want one WARN for a's seq 2, forbidden, with its reason", r)
	}
	if r := find(recs, "write refused", map[string]any{"site": site.String(), "seq": 1, "code": int(usync.CodeMalformedTx)}); len(r) != 1 {
		t.Errorf("write refused records %v, want one for the malformed value", r)
	}
	if r := find(recs, "authentication refused", map[string]any{"code": int(usync.CodeUnauthorized)}); len(r) != 1 || r[0]["level"] != "WARN" || r[0]["remote"] == "" {
		t.Errorf("authentication refused records %v, want one WARN with code and remote address", r)
	}
	if r := find(recs, "push", map[string]any{"tenant": "dev"}); len(r) < 2 || r[0]["level"] != "DEBUG" {
		t.Errorf("push records %v, want one DEBUG record per push", r)
	}
	text := buf.text()
	for what, s := range map[string]string{"the token": e.auth.Token, "the refused token": badToken, "a row value": secret} {
		if strings.Contains(text, s) {
			t.Errorf("the log holds %s:\n%s", what, text)
		}
	}
}
