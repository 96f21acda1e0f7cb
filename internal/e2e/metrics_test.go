package e2e

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/sqlitelog"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// oneTenant is a registry of one tenant.
type oneTenant struct{ t tenancy.Tenant }

func (r oneTenant) Tenant(_ context.Context, id string) (tenancy.Tenant, error) {
	if id != r.t.ID {
		return tenancy.Tenant{}, tenancy.ErrUnknownTenant
	}
	return r.t, nil
}

func (r oneTenant) Retained(context.Context) ([]tenancy.Tenant, error) {
	return []tenancy.Tenant{r.t}, nil
}

// retainingLog is the embedded log with a fake retention: Retain reports
// one entry deleted and deletes nothing (so LogStart stays 1), enough to
// see the server count what its retention deletes.
type retainingLog struct{ *sqlitelog.Log }

func (retainingLog) LogStart(context.Context, string) (uint64, error) { return 1, nil }

func (retainingLog) Retain(context.Context, string, time.Time) (int64, error) { return 1, nil }

// sample is one series of a /metrics scrape.
type sample struct {
	family string // the metric family it belongs to
	value  float64
}

// scrape reads the server's /metrics: the type of each family (go_ and
// process_ ones left out) and its samples by series ("name{labels}").
func (e *env) scrape(t *testing.T) (types map[string]string, series map[string]sample) {
	t.Helper()
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	types, series = map[string]string{}, map[string]sample{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				types[name] = typ
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		name := line[:strings.IndexAny(line, "{ ")]
		fam := name
		if _, ok := types[fam]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suffix); ok && types[f] == "histogram" {
					fam = f
				}
			}
		}
		if _, ok := types[fam]; ok {
			series[line[:i]] = sample{family: fam, value: v}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return types, series
}

// unmoved returns the families that have not moved from their zero value
// (a counter or gauge: no nonzero sample; a histogram: no observation),
// among those scraped and those named in want.
func unmoved(types map[string]string, series map[string]sample, want []string) []string {
	moved := map[string]bool{}
	for s, v := range series {
		if types[v.family] == "histogram" {
			if strings.HasPrefix(s, v.family+"_count") && v.value > 0 {
				moved[v.family] = true
			}
		} else if v.value != 0 {
			moved[v.family] = true
		}
	}
	var out []string
	for _, name := range append(slices.Collect(maps.Keys(types)), want...) {
		if !moved[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// declaredMetrics returns the names of the metrics the server's source
// declares: a labelled family nobody ever used is absent from /metrics,
// so the scrape alone would not catch it.
func declaredMetrics(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../server/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("server sources: %v, %v", files, err)
	}
	re := regexp.MustCompile(`Name:\s*"(uno_[a-z_]+)"`)
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names
}

// hello opens a raw session with h (its token and versions filled in).
func hello(t *testing.T, ctx context.Context, e *env, h usync.Hello) *rawPeer {
	t.Helper()
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(codec.Close)
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(8 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	p := &rawPeer{ws: ws, codec: codec}
	h.Versions, h.Token = usync.Versions, e.auth.Token
	p.send(t, ctx, &h)
	if m, ok := p.recv(t, ctx).(*usync.Welcome); !ok {
		t.Fatalf("got %T %+v, want a Welcome", m, m)
	}
	return p
}

// put writes a row and syncs.
func put(t *testing.T, c *client.Client, coll, id string, doc map[string]any) {
	t.Helper()
	if err := c.Collection(coll).Put(context.Background(), id, doc); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, c)
}

// A realistic session moves every metric the server registers: pushes,
// live delivery to a second client, a refused write, a resumed bootstrap,
// a resubscription, a reconnection from a cursor, a renewed token, a live
// query stream and a cached query, and a retention pass. A metric that
// nothing moves fails the test.
func TestMetrics_EveryMetricMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := sqlitelog.Open(ctx, filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := startServerWith(t, server.Config{
		Log:      retainingLog{l},
		Registry: oneTenant{tenancy.Tenant{ID: "dev", RetentionDays: 1}},
		Rules:    map[string]server.Rule{"plans": {ReadOnly: true}},
		// Tracing on (spans recorded, not exported), for the trace metrics.
		TracerProvider: sdktrace.NewTracerProvider(),
	})

	a := e.client(t, "a", true)
	put(t, a, "todos", "t1", map[string]any{"title": "one"})
	put(t, a, "todos", "t2", map[string]any{"title": "two"})
	// b bootstraps from the snapshot, then tails the log live.
	b := e.client(t, "b", false)
	has := func(c *client.Client, id string) bool {
		_, err := c.Collection("todos").Get(ctx, id)
		return err == nil
	}
	waitFor(t, func() bool { return has(b, "t2") })
	put(t, a, "todos", "t3", map[string]any{"title": "three"})
	waitFor(t, func() bool { return has(b, "t3") })
	// A refused write.
	put(t, a, "plans", "p1", map[string]any{"title": "no"})
	if rej, err := a.Rejections(ctx, 0, 0); err != nil || len(rej) != 1 {
		t.Fatalf("rejections %+v, %v; want the write to plans", rej, err)
	}
	head, err := l.Head(ctx, "dev")
	if err != nil || head < 3 {
		t.Fatalf("head %d, %v", head, err)
	}

	// A bootstrap resumed after t1, a resubscription, and a replica
	// reconnecting from its cursor that renews its token.
	var site crdt.SiteID
	next := func() crdt.SiteID { site[0]++; return site }
	resumed := hello(t, ctx, e, usync.Hello{Site: next(), Credits: 8, Resume: usync.Resume{Seq: head, After: crdt.RowKey{Collection: "todos", Row: "t1"}}})
	nextOf[*usync.Snapshot](t, ctx, resumed)
	resub := hello(t, ctx, e, usync.Hello{Site: next(), Credits: 8, Cursor: head, Resubscribe: true,
		Subscriptions: []usync.Subscription{{Collection: "todos"}}, Previous: []usync.Subscription{{Collection: "plans"}}})
	nextOf[*usync.Snapshot](t, ctx, resub)
	back := hello(t, ctx, e, usync.Hello{Site: next(), Credits: 8, Cursor: 1})
	if ch := nextOf[*usync.Changes](t, ctx, back); ch.From != 1 {
		t.Fatalf("Changes from %d, want 1", ch.From)
	}
	back.send(t, ctx, &usync.Auth{Token: e.auth.Token})
	nextOf[*usync.AuthOK](t, ctx, back)
	// A push with a malformed trace context.
	traced := hello(t, ctx, e, usync.Hello{Site: next(), Credits: 8})
	traced.send(t, ctx, &usync.Push{Txs: []crdt.Tx{tx(site, 1)}, Trace: "not a traceparent"})
	nextOf[*usync.Ack](t, ctx, traced)

	// A live query stream, open while the metrics are read.
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http+"/v1/collections/todos?live=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.auth.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "event: result\n" {
		t.Fatalf("live query: %q, %v", line, err)
	}
	if err := e.server.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}

	declared := declaredMetrics(t)
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Query until the result cache (filled asynchronously) has hits.
		req, _ := http.NewRequestWithContext(ctx, "GET", e.http+"/v1/collections/todos", nil)
		req.Header.Set("Authorization", "Bearer "+e.auth.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		types, series := e.scrape(t)
		if left = unmoved(types, series, declared); len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics that never moved: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(declared) < 20 {
		t.Fatalf("found only %d declared metrics: %v", len(declared), declared)
	}
}

// txIn is a transaction of site incrementing a counter in coll.
func txIn(site crdt.SiteID, seq uint64, coll string) crdt.Tx {
	t := tx(site, seq)
	t.Ops[0].Collection = coll
	return t
}

// A refused write is counted once in uno_errors_total, whether the
// server's rules refused it or the session (a gap).
func TestMetrics_RefusalCountedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := startServerWith(t, server.Config{Rules: map[string]server.Rule{"plans": {ReadOnly: true}}})
	site := crdt.SiteID{4, 2}
	p := hello(t, ctx, e, usync.Hello{Site: site})
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{txIn(site, 1, "c"), txIn(site, 2, "plans")}})
	if r := nextOf[*usync.Reject](t, ctx, p); r.Code != usync.CodeForbidden || r.Seq != 2 {
		t.Fatalf("Reject %+v, want seq 2 forbidden", r)
	}
	nextOf[*usync.Ack](t, ctx, p)
	p.send(t, ctx, &usync.Push{Txs: []crdt.Tx{txIn(site, 4, "c")}})
	if r := nextOf[*usync.Reject](t, ctx, p); r.Code != usync.CodeGap {
		t.Fatalf("Reject %+v, want a gap", r)
	}
	nextOf[*usync.Ack](t, ctx, p)
	_, series := e.scrape(t)
	got := map[string]float64{}
	for s, v := range series {
		if v.family == "uno_errors_total" {
			got[s] = v.value
		}
	}
	want := map[string]float64{
		`uno_errors_total{code="forbidden"}`:       1,
		`uno_errors_total{code="gap in sequence"}`: 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("uno_errors_total %v, want %v", got, want)
	}
}
