package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

type page struct {
	Rows []map[string]any `json:"rows"`
	Next string           `json:"next"`
	Head uint64           `json:"head"`
}

// The query API serves the rows read model to other services: paged,
// filtered, per tenant, cached until the log moves, and live over SSE.
func TestQueryAPI(t *testing.T) {
	ctx := context.Background()
	e := startServer(t)
	a := e.client(t, "a", true)
	for i := range 25 {
		if err := a.Collection("todos").Put(ctx, fmt.Sprintf("t%02d", i), map[string]any{"title": fmt.Sprint("task ", i), "done": i%2 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Collection("todos").Increment(ctx, "t00", "votes", 3); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	base := "http" + strings.TrimPrefix(strings.TrimSuffix(e.url, "/v1/sync"), "ws")
	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	decode := func(b []byte) page {
		t.Helper()
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return p
	}
	// Pages of 10 by ID, with a cursor.
	var ids []string
	cursor := ""
	for range 5 {
		code, b := get("/v1/collections/todos?limit=10&after="+cursor, e.auth.Token)
		if code != 200 {
			t.Fatalf("page: %d %s", code, b)
		}
		p := decode(b)
		for _, r := range p.Rows {
			ids = append(ids, r["id"].(string))
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(ids) != 25 || ids[0] != "t00" || ids[24] != "t24" {
		t.Fatalf("paged %d rows: %v", len(ids), ids)
	}
	// Values and a filter.
	_, b := get("/v1/collections/todos?where=done:true&limit=100", e.auth.Token)
	p := decode(b)
	if len(p.Rows) != 13 || p.Rows[0]["id"] != "t00" || p.Rows[0]["votes"] != float64(3) || p.Rows[0]["title"] != "task 0" {
		t.Fatalf("done:true gave %d rows, first %v", len(p.Rows), p.Rows[0])
	}
	// Ordered by a field, descending, in pages: titles "task 9" > "task 8"
	// > ... > "task 24" > ... (text order), ties impossible.
	var titles []string
	cursor = ""
	for range 10 {
		code, b := get("/v1/collections/todos?order=-title&limit=7&after="+cursor, e.auth.Token)
		if code != 200 {
			t.Fatalf("ordered page: %d %s", code, b)
		}
		p := decode(b)
		for _, r := range p.Rows {
			titles = append(titles, r["title"].(string))
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(titles) != 25 || !sort.SliceIsSorted(titles, func(i, j int) bool { return titles[i] > titles[j] }) {
		t.Fatalf("order=-title gave %v", titles)
	}
	// Errors: no token, bad token, bad limit, bad filter, order, cursor.
	for path, tok := range map[string]string{
		"/v1/collections/todos":                 "",
		"/v1/collections/todos?limit=0":         e.auth.Token,
		"/v1/collections/todos?where=done":      e.auth.Token,
		"/v1/collections/todos?order=a'b":       e.auth.Token,
		"/v1/collections/todos?after=notbase64": e.auth.Token,
		"/v1/collections/todo$":                 e.auth.Token,
	} {
		if code, _ := get(path, tok); code < 400 {
			t.Errorf("GET %s (token %v): %d, want an error", path, tok != "", code)
		}
	}
	if code, _ := get("/v1/collections/todos", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d", code)
	}
	// Cached: the same query again is a hit (the ratio rises above 0).
	// The cache admits entries asynchronously, so the first repeat may
	// still miss: repeat a few times.
	hit := false
	for i := 0; i < 50 && !hit; i++ {
		get("/v1/collections/todos?where=done:true&limit=100", e.auth.Token)
		_, m := get("/metrics", "")
		hit = strings.Contains(string(m), "uno_query_cache_hit_ratio") && !strings.Contains(string(m), "uno_query_cache_hit_ratio 0\n")
		if !hit {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !hit {
		t.Errorf("no cache hit recorded")
	}
	// Live: a write shows up as a new event.
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/collections/todos?live=1&where=done:false&limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+e.auth.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan page, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var p page
				json.Unmarshal([]byte(data), &p)
				events <- p
			}
		}
	}()
	first := <-events
	if len(first.Rows) != 12 {
		t.Fatalf("live: first result has %d rows, want 12", len(first.Rows))
	}
	if err := a.Collection("todos").Put(ctx, "t99", map[string]any{"title": "new", "done": false}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	select {
	case p := <-events:
		if len(p.Rows) != 13 {
			t.Fatalf("live update has %d rows, want 13", len(p.Rows))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live update after a write")
	}
}
