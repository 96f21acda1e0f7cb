package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	usync "github.com/unosync/uno/sync"
	"github.com/unosync/uno/tenancy"
)

// Query API limits.
const (
	defaultPage = 100
	maxPage     = 1000
	maxFilters  = 8
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

// serveQuery answers GET /v1/collections/{name}: the rows read model as
// JSON. Query parameters: where=field:<JSON value> (repeatable, all must
// match), order=field or order=-field (descending; default: by ID),
// limit (1..1000, default 100) and after=<the previous page's next>.
// With ?live=1 the result streams as Server-Sent Events that follow the
// log. The token comes as "Authorization: Bearer".
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	id, err := s.httpIdentity(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	q, err := parseQuery(r)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if _, ok := s.cfg.Log.(RowQuerier); !ok {
		s.httpError(w, r, usync.Errorf(usync.CodeUnavailable, "this log has no rows read model"))
		return
	}
	// The same read rules as sync: a PrivateRead collection shows each
	// user only the rows it owns.
	sc, err := newScope(nil, s.live.Load().Rules, id.User)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	for _, f := range sc.filters[q.Collection] {
		if f.Value == nil {
			s.httpError(w, r, usync.Errorf(usync.CodeForbidden, "collection %s shows each user only its rows: the token names no user", q.Collection))
			return
		}
		q.Where = append(q.Where, FieldValue{Field: f.Field, Value: f.Value})
	}
	if r.URL.Query().Get("live") != "" {
		s.serveLive(w, r, id, q)
		return
	}
	body, err := s.query(r.Context(), id.Tenant, q)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// httpIdentity authenticates a request's bearer token and admits its
// tenant.
func (s *Server) httpIdentity(r *http.Request) (tenancy.Identity, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		const reason = "send the token as Authorization: Bearer <token>"
		s.refusedAuth(r.Context(), r.RemoteAddr, usync.CodeUnauthorized, reason)
		return tenancy.Identity{}, usync.Errorf(usync.CodeUnauthorized, reason)
	}
	id, err := s.authenticate(r.Context(), token, r.RemoteAddr)
	if err != nil {
		return tenancy.Identity{}, err
	}
	if _, err := s.admit(r.Context(), id.Tenant); err != nil {
		if se := (*usync.Error)(nil); errors.As(err, &se) && se.Code == usync.CodeForbidden {
			s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "request refused", slog.String("tenant", id.Tenant), slog.String("user", id.User),
				slog.String("remote", r.RemoteAddr), slog.Int("code", int(se.Code)), slog.String("reason", se.Message))
		}
		return tenancy.Identity{}, err
	}
	return id, nil
}

// validField reports whether name can be a field in a query: letters,
// digits, '_' and '-', at most 63 bytes.
func validField(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func parseQuery(r *http.Request) (RowQuery, error) {
	v := r.URL.Query()
	q := RowQuery{Collection: r.PathValue("name"), Limit: defaultPage}
	if !validField(q.Collection) {
		return q, usync.Errorf(usync.CodeBadMessage, "collection name %q", q.Collection)
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPage {
			return q, usync.Errorf(usync.CodeBadMessage, "limit %q: want 1..%d", l, maxPage)
		}
		q.Limit = n
	}
	if o := v.Get("order"); o != "" {
		q.Order, q.Desc = strings.CutPrefix(o, "-")
		if q.Order == "id" {
			q.Order = ""
		}
		if q.Order != "" && !validField(q.Order) {
			return q, usync.Errorf(usync.CodeBadMessage, "order %q: want a field name, - before it for descending", o)
		}
	}
	if a := v.Get("after"); a != "" {
		c, err := decodeCursor(a)
		if err != nil {
			return q, err
		}
		q.After = c
	}
	if len(v["where"]) > maxFilters {
		return q, usync.Errorf(usync.CodeBadMessage, "%d where filters: at most %d", len(v["where"]), maxFilters)
	}
	for _, wh := range v["where"] {
		field, value, ok := strings.Cut(wh, ":")
		if !ok || !validField(field) || !json.Valid([]byte(value)) {
			return q, usync.Errorf(usync.CodeBadMessage, "where %q: want field:<JSON value>, such as done:false", wh)
		}
		var buf bytes.Buffer
		json.Compact(&buf, []byte(value))
		q.Where = append(q.Where, FieldValue{Field: field, Value: buf.Bytes()})
	}
	return q, nil
}

// query runs q, through the cache. A cached result is keyed by the
// tenant's head, the checkpoint of the rows projection (which folds inline,
// in the append), so a new entry invalidates every result of that tenant.
func (s *Server) query(ctx context.Context, tenant string, q RowQuery) ([]byte, error) {
	head, err := s.cfg.Log.Head(ctx, tenant)
	if err != nil {
		return nil, s.unavailable("read head", err, "tenant", tenant)
	}
	after := ""
	if q.After != nil {
		after = q.After.encode()
	}
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%d\x00%s\x00%v\x00%v", tenant, q.Collection, after, q.Limit, head, q.Order, q.Desc, q.Where)
	if b, ok := s.cache.Get(key); ok {
		return b, nil
	}
	rows, err := s.cfg.Log.(RowQuerier).QueryRows(ctx, tenant, q)
	if err != nil {
		return nil, s.unavailable("query rows", err, "tenant", tenant, "collection", q.Collection)
	}
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		out[i] = withID(r.Doc, r.ID)
	}
	next := ""
	if len(rows) == q.Limit {
		last := rows[len(rows)-1]
		next = (&QueryCursor{Value: last.Order, ID: last.ID}).encode()
	}
	body, err := json.Marshal(map[string]any{"rows": out, "next": next, "head": head})
	if err != nil {
		return nil, err
	}
	s.cache.SetWithTTL(key, body, int64(len(body)), time.Minute)
	return body, nil
}

// withID adds "id" to a row's document.
func withID(doc json.RawMessage, id string) json.RawMessage {
	idj, _ := json.Marshal(id)
	out := append([]byte(`{"id":`), idj...)
	if inner := bytes.TrimSpace(doc[1 : len(doc)-1]); len(inner) > 0 {
		out = append(append(out, ','), inner...)
	}
	return append(out, '}')
}

// serveLive streams the query's result as Server-Sent Events: now, then
// each time the tenant's log grows and the result changes. The stream
// ends when the token expires (an "expired" event first), when the
// server shuts down, and is refused when MaxStreams are open.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request, id tenancy.Identity, p RowQuery) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.httpError(w, r, usync.Errorf(usync.CodeInternal, "streaming unsupported"))
		return
	}
	if n := s.streams.Add(1); n > int64(s.live.Load().MaxStreams) {
		s.streams.Add(-1)
		s.httpError(w, r, usync.Errorf(usync.CodeUnavailable, "too many live streams: retry later"))
		return
	}
	defer s.streams.Add(-1)
	s.m.streams.Inc()
	defer s.m.streams.Dec()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	ctx := r.Context()
	var expired <-chan time.Time
	if !id.Expires.IsZero() {
		t := time.NewTimer(id.Expires.Sub(s.cfg.Now()))
		defer t.Stop()
		expired = t.C
	}
	// The stream outlives the HTTP server's read and write timeouts:
	// no read deadline, and WriteTimeout for each event.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	var last []byte
	for {
		head, err := s.cfg.Log.Head(ctx, id.Tenant)
		if err != nil {
			return
		}
		body, err := s.query(ctx, id.Tenant, p)
		if err != nil {
			return
		}
		if !bytes.Equal(body, last) {
			last = body
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			fmt.Fprintf(w, "event: result\ndata: %s\n\n", body)
			flusher.Flush()
		}
		select {
		case <-s.cfg.Log.Wait(ctx, id.Tenant, head):
		case <-expired:
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "token expired", slog.String("tenant", id.Tenant), slog.String("user", id.User),
				slog.String("remote", r.RemoteAddr), slog.String("stream", r.URL.Path))
			fmt.Fprintf(w, "event: expired\ndata: {\"code\":%d,\"error\":\"the token expired: reconnect with a fresh one\"}\n\n", usync.CodeTokenExpired)
			flusher.Flush()
			return
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// httpError writes a coded error as JSON with a fitting HTTP status. An
// error without a code is logged and answered as an internal error,
// without its text.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	var se *usync.Error
	if !errors.As(err, &se) {
		s.cfg.Logger.Error("query", "path", r.URL.Path, "err", err)
		se = usync.Errorf(usync.CodeInternal, "internal error")
	}
	s.cfg.Logger.Debug("query refused", "path", r.URL.Path, "code", se.Code, "err", se.Message)
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
	case usync.CodeQuotaExceeded:
		status = http.StatusForbidden
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": se.Code, "error": se.Error()})
}
