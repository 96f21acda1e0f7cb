package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// The query API benchmarks page through one collection of QueryRows rows
// of four fields, QueryPageRows at a time.
const (
	QueryRows     = 10_000
	QueryPageRows = 100
)

// The query API benchmarks (BenchmarkQueryPage; uno bench --sync) measure
// GET /v1/collections/{name}?limit=100&after=<cursor> over real loopback
// HTTP, against each log (the embedded SQLite one, and Postgres as an
// application role under row-level security): the same 100-row page from
// the middle of a 10,000-row collection, served from the result cache
// (cached) and rebuilt from the rows read model (uncached). Each reports
// the p50 and p99 of a request's round trip, body read.

// queryPage runs the cached or uncached query benchmark with its own
// server seeded over the log open returns.
func queryPage(open func(B) server.Log, cached bool) func(B) {
	return func(b B) {
		e := startQuery(b, open(b))
		if cached {
			e.cached(b)
		} else {
			e.uncached(b)
		}
	}
}

// sqliteLog opens an embedded SQLite log in a temporary directory,
// closed when the run ends.
func sqliteLog(b B) server.Log {
	b.Helper()
	l, err := sqlitelog.Open(context.Background(), filepath.Join(b.TempDir(), "server.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// pgLog migrates the empty database at admin (an admin DSN) and opens
// its log through app (a DSN of a role that is neither owner nor
// superuser, so row-level security applies). The log is closed when the
// run ends.
func pgLog(b B, admin string, app func(admin string) string) server.Log {
	b.Helper()
	ctx := context.Background()
	if err := pglog.Migrate(ctx, admin, pglog.SchemaVersion); err != nil {
		b.Fatal(err)
	}
	l, err := pglog.Open(ctx, app(admin))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// queryEnv is an in-process server on a loopback socket over a log seeded
// with QueryRows rows, and the page the benchmarks request.
type queryEnv struct {
	base   string // http://127.0.0.1:port
	token  string
	log    server.Log
	hc     *http.Client
	path   string // the measured page
	clock  *crdt.Clock
	site   crdt.SiteID
	seq    uint64 // the site's last transaction
	served int    // successful query requests so far (each one cache lookup)
}

// startQuery starts a server over l and seeds it.
func startQuery(b B, l server.Log) *queryEnv {
	b.Helper()
	ctx := context.Background()
	auth, err := tenancy.NewDevAuth("bench")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(func() { hs.Close(); srv.Close() })
	e := &queryEnv{base: hs.URL, token: auth.Token, log: l, hc: &http.Client{Timeout: time.Minute},
		clock: crdt.NewClock(0, 0), site: crdt.SiteID{0xbe, 0x9c}}

	// Seed: one row per transaction, as clients write them, 1,000 per append.
	const batch = 1000
	for start := 0; start < QueryRows; start += batch {
		txs := make([]crdt.Tx, 0, batch)
		for n := start; n < start+batch; n++ {
			id := fmt.Sprintf("task-%05d", n)
			txs = append(txs, e.tx(
				crdt.Op{Type: crdt.OpRevive, Collection: "tasks", Row: id, CL: 1},
				e.set(id, "title", fmt.Appendf(nil, `"task number %d"`, n)),
				e.set(id, "done", strconv.AppendBool(nil, n%3 == 0)),
				e.set(id, "priority", strconv.AppendInt(nil, int64(n%5), 10)),
				e.set(id, "owner", fmt.Appendf(nil, `"user-%d@example.com"`, n%97)),
			))
		}
		if _, err := l.Append(ctx, "bench", txs); err != nil {
			b.Fatal(err)
		}
	}

	// The measured page starts halfway: its cursor is the one the API
	// returns after 5,000 rows.
	after := ""
	for range QueryRows / 2 / 1000 {
		body := e.check(b, e.get(b, "/v1/collections/tasks?limit=1000&after="+url.QueryEscape(after)))
		var p struct{ Next string }
		if err := json.Unmarshal(body, &p); err != nil || p.Next == "" {
			b.Fatalf("no next cursor (%v): %.200s", err, body)
		}
		after = p.Next
	}
	e.path = fmt.Sprintf("/v1/collections/tasks?limit=%d&after=%s", QueryPageRows, url.QueryEscape(after))
	return e
}

// tx returns the bench site's next transaction.
func (e *queryEnv) tx(ops ...crdt.Op) crdt.Tx {
	e.seq++
	return crdt.Tx{Site: e.site, Seq: e.seq, Time: e.clock.Now(time.Now()), Ops: ops}
}

func (e *queryEnv) set(row, field string, value []byte) crdt.Op {
	return crdt.Op{Type: crdt.OpSet, Kind: crdt.KindRegister, Collection: "tasks", Row: row, Field: field, CL: 1, Value: value}
}

// response is one request's outcome.
type response struct {
	path   string
	status int
	body   []byte
}

// get requests path (bearer token, body read in full, connection kept).
func (e *queryEnv) get(b B, path string) response {
	req, err := http.NewRequest("GET", e.base+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		e.served++
	}
	return response{path: path, status: resp.StatusCode, body: body}
}

// check fails unless r is a 200 holding the page size it asked for;
// it returns the body.
func (e *queryEnv) check(b B, r response) []byte {
	b.Helper()
	if r.status != http.StatusOK {
		b.Fatalf("GET %s: %d %.300s", r.path, r.status, r.body)
	}
	var p struct{ Rows []json.RawMessage }
	if err := json.Unmarshal(r.body, &p); err != nil {
		b.Fatalf("GET %s: %v: %.300s", r.path, err, r.body)
	}
	q, _ := url.Parse(r.path)
	if want, _ := strconv.Atoi(q.Query().Get("limit")); len(p.Rows) != want {
		b.Fatalf("GET %s: %d rows, want %d", r.path, len(p.Rows), want)
	}
	return r.body
}

// cacheCounts returns the query cache's hits and misses so far, from the
// server's hit-ratio gauge and the number of requests served (each
// request is one lookup).
func (e *queryEnv) cacheCounts(b B) (hits, misses int) {
	b.Helper()
	resp, err := e.hc.Get(e.base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "uno_query_cache_hit_ratio" {
			ratio, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			hits = int(math.Round(ratio * float64(e.served)))
			return hits, e.served - hits
		}
	}
	b.Fatal("metric uno_query_cache_hit_ratio not found")
	return 0, 0
}

// cached requests the same page over and over with no write in between:
// every timed request is a cache hit (checked against the server's cache
// metrics).
func (e *queryEnv) cached(b B) {
	first := e.check(b, e.get(b, e.path))
	// The cache admits a result asynchronously: repeat until one hit.
	deadline := time.Now().Add(10 * time.Second)
	for hits, _ := e.cacheCounts(b); hits == 0; hits, _ = e.cacheCounts(b) {
		if time.Now().After(deadline) {
			b.Fatal("the page never came from the cache")
		}
		time.Sleep(time.Millisecond)
		e.check(b, e.get(b, e.path))
	}
	_, misses0 := e.cacheCounts(b)
	lat := make([]time.Duration, 0, b.N())
	b.ResetTimer()
	for range b.N() {
		start := time.Now()
		r := e.get(b, e.path)
		lat = append(lat, time.Since(start))
		if r.status != http.StatusOK || !bytes.Equal(r.body, first) {
			b.StopTimer()
			e.check(b, r)
			b.Fatalf("GET %s: the page changed with no write in between", r.path)
		}
	}
	b.StopTimer()
	if _, misses := e.cacheCounts(b); misses != misses0 {
		b.Fatalf("%d of %d requests missed the cache", misses-misses0, b.N())
	}
	reportLatency(b, lat)
}

// uncached appends one small transaction to the tenant (untimed) before
// each timed request. The head is part of every cache key, so the request
// must miss and rebuild the page from the rows read model: the first read
// after a write, which is how results go stale in use. The request stays
// byte for byte the cached benchmark's, so the two differ only by the
// cache. (Walking cursors over pages never requested instead would run
// out after 100 pages of 10,000 rows, and arbitrary cursors would
// request other pages than the cached figure's.) The write updates a row
// outside the page, so the page holds the same rows each time. Misses are
// checked against the server's cache metrics.
func (e *queryEnv) uncached(b B) {
	ctx := context.Background()
	e.check(b, e.get(b, e.path))
	hits0, _ := e.cacheCounts(b)
	lat := make([]time.Duration, 0, b.N())
	b.ResetTimer()
	for i := range b.N() {
		b.StopTimer()
		id := fmt.Sprintf("task-%05d", i%1000) // in the first 1,000 rows, before the page
		tx := e.tx(e.set(id, "priority", strconv.AppendInt(nil, int64(i), 10)))
		if _, err := e.log.Append(ctx, "bench", []crdt.Tx{tx}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r := e.get(b, e.path)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		e.check(b, r)
		b.StartTimer()
	}
	b.StopTimer()
	if hits, _ := e.cacheCounts(b); hits != hits0 {
		b.Fatalf("%d of %d requests hit the cache", hits-hits0, b.N())
	}
	reportLatency(b, lat)
}

// reportLatency reports the p50 and p99 of lat, in milliseconds.
func reportLatency(b B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
