package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// rowPages is the optional capability of a log whose rows read model can
// be paged by collection.
type rowPages interface {
	RowsPage(ctx context.Context, tenant, coll, after string, limit int) ([]usync.SnapshotRow, error)
}

// Query API limits.
const (
	defaultPage = 100
	maxPage     = 1000
	maxScan     = 10_000 // rows examined per request when filtering
)

// queryCache holds hot query results. A key includes the tenant's head, so
// a new entry in the log (a projection checkpoint) invalidates every
// result of that tenant at once.
func newQueryCache(m *metrics) (*ristretto.Cache[string, []byte], error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 100_000, MaxCost: 64 << 20, BufferItems: 64, Metrics: true})
	if err != nil {
		return nil, err
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "uno_query_cache_hit_ratio", Help: "Hit ratio of the query result cache.",
	}, func() float64 { return c.Metrics.Ratio() }))
	return c, nil
}

type queryParams struct {
	coll  string
	after string
	limit int
	where map[string]json.RawMessage // field = JSON value
}

// serveQuery answers GET /v1/collections/{name}: the rows read model as
// JSON, filtered by field equality (?where=field:json), in ID order, in
// pages (?limit, ?after=<next cursor>); with ?live=1 as Server-Sent
// Events that follow the log. The token comes as "Authorization: Bearer".
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.httpTenant(r)
	if err != nil {
		httpError(w, err)
		return
	}
	p, err := parseQuery(r)
	if err != nil {
		httpError(w, err)
		return
	}
	if _, ok := s.cfg.Log.(rowPages); !ok {
		httpError(w, usync.Errorf(usync.CodeUnavailable, "this log has no rows read model"))
		return
	}
	if r.URL.Query().Get("live") != "" {
		s.serveLive(w, r, tenant, p)
		return
	}
	body, err := s.query(r.Context(), tenant, p)
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (s *Server) httpTenant(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", usync.Errorf(usync.CodeUnauthorized, "send the token as Authorization: Bearer <token>")
	}
	tenant, err := s.cfg.Auth.Authenticate(r.Context(), token)
	if err != nil {
		return "", err
	}
	if _, err := s.admit(r.Context(), tenant); err != nil {
		return "", err
	}
	return tenant, nil
}

func parseQuery(r *http.Request) (queryParams, error) {
	q := r.URL.Query()
	p := queryParams{coll: r.PathValue("name"), after: q.Get("after"), limit: defaultPage, where: map[string]json.RawMessage{}}
	if p.coll == "" || len(p.coll) > 63 {
		return p, usync.Errorf(usync.CodeBadMessage, "collection name %q", p.coll)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPage {
			return p, usync.Errorf(usync.CodeBadMessage, "limit %q: want 1..%d", l, maxPage)
		}
		p.limit = n
	}
	for _, wh := range q["where"] {
		field, value, ok := strings.Cut(wh, ":")
		if !ok || field == "" || !json.Valid([]byte(value)) {
			return p, usync.Errorf(usync.CodeBadMessage, "where %q: want field:<JSON value>, such as done:false", wh)
		}
		var buf bytes.Buffer
		json.Compact(&buf, []byte(value))
		p.where[field] = buf.Bytes()
	}
	return p, nil
}

// query runs p, through the cache.
func (s *Server) query(ctx context.Context, tenant string, p queryParams) ([]byte, error) {
	head, err := s.cfg.Log.Head(ctx, tenant)
	if err != nil {
		return nil, usync.Errorf(usync.CodeUnavailable, "%v", err)
	}
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%d\x00%v", tenant, p.coll, p.after, p.limit, head, p.where)
	if b, ok := s.cache.Get(key); ok {
		return b, nil
	}
	pages := s.cfg.Log.(rowPages)
	var out []json.RawMessage
	after, scanned, more := p.after, 0, true
	for len(out) < p.limit && more && scanned < maxScan {
		rows, err := pages.RowsPage(ctx, tenant, p.coll, after, p.limit)
		if err != nil {
			return nil, usync.Errorf(usync.CodeUnavailable, "%v", err)
		}
		more = len(rows) == p.limit
		for _, sr := range rows {
			scanned++
			after = sr.Row
			doc, ok, err := rowJSON(sr, p.where)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, doc)
				if len(out) == p.limit {
					break
				}
			}
		}
	}
	next := ""
	if more || len(out) == p.limit {
		next = after
	}
	body, err := json.Marshal(map[string]any{"rows": out, "next": next, "head": head})
	if err != nil {
		return nil, err
	}
	s.cache.SetWithTTL(key, body, int64(len(body)), time.Minute)
	return body, nil
}

// rowJSON renders an alive row as a JSON object ("id" and each field's
// value: a register's last-writer-wins value, a counter's number, a set's
// members, a doc's bytes as base64) if it matches where.
func rowJSON(sr usync.SnapshotRow, where map[string]json.RawMessage) (json.RawMessage, bool, error) {
	r, err := crdt.DecodeRow(sr.State)
	if err != nil {
		return nil, false, fmt.Errorf("row %s: %w", sr.Row, err)
	}
	if !r.Alive() {
		return nil, false, nil
	}
	fields := map[string]json.RawMessage{}
	for i := range r.Fields {
		f := &r.Fields[i]
		switch f.Kind {
		case crdt.KindCounter:
			fields[f.Name] = json.RawMessage(strconv.FormatInt(f.Counter.Value(), 10))
		case crdt.KindSet:
			b := []byte{'['}
			for j, m := range f.Set.Values() {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, m...)
			}
			fields[f.Name] = append(b, ']')
		case crdt.KindDoc:
			if e, ok := f.Register.Winner(); ok {
				fields[f.Name], _ = json.Marshal(base64.StdEncoding.EncodeToString(e.Value))
			}
		default:
			if e, ok := f.Register.Winner(); ok {
				fields[f.Name] = e.Value
			}
		}
	}
	for field, want := range where {
		var got bytes.Buffer
		if v, ok := fields[field]; !ok || json.Compact(&got, v) != nil || !bytes.Equal(got.Bytes(), want) {
			return nil, false, nil
		}
	}
	id, _ := json.Marshal(sr.Row)
	fields["id"] = id
	b, err := json.Marshal(fields)
	return b, err == nil, err
}

// serveLive streams the query's result as Server-Sent Events: now, then
// each time the tenant's log grows and the result changes.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request, tenant string, p queryParams) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		httpError(w, usync.Errorf(usync.CodeInternal, "streaming unsupported"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	ctx := r.Context()
	var last []byte
	for {
		head, err := s.cfg.Log.Head(ctx, tenant)
		if err != nil {
			return
		}
		body, err := s.query(ctx, tenant, p)
		if err != nil {
			return
		}
		if !bytes.Equal(body, last) {
			last = body
			fmt.Fprintf(w, "event: result\ndata: %s\n\n", body)
			flusher.Flush()
		}
		select {
		case <-s.cfg.Log.Wait(ctx, tenant, head):
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// httpError writes a coded error as JSON with a fitting HTTP status.
func httpError(w http.ResponseWriter, err error) {
	var se *usync.Error
	if !errors.As(err, &se) {
		se = usync.Errorf(usync.CodeInternal, "%v", err)
	}
	status := http.StatusInternalServerError
	switch se.Code {
	case usync.CodeUnauthorized, usync.CodeTokenExpired:
		status = http.StatusUnauthorized
	case usync.CodeForbidden:
		status = http.StatusForbidden
	case usync.CodeBadMessage:
		status = http.StatusBadRequest
	case usync.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case usync.CodeRateLimited:
		status = http.StatusTooManyRequests
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": se.Code, "error": se.Error()})
}
