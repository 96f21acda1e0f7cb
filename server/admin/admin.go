package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/tenancy"
	"golang.org/x/time/rate"
)

// MinTokenBytes is the shortest admin credential New accepts.
const MinTokenBytes = 32

// Errors of New.
var (
	ErrNoServer  = errors.New("admin: Config.Server is required")
	ErrWeakToken = fmt.Errorf("admin: the admin token must be at least %d bytes (generate one with: head -c 32 /dev/urandom | base64)", MinTokenBytes)
)

// Config configures the dashboard. Every field but Server and Token is
// optional.
type Config struct {
	// Server is the server the dashboard shows and acts on.
	Server *server.Server
	// Token is the operator's credential: a bearer token for the API, or
	// typed once into the login page, which sets a session cookie. It is
	// never a tenant's token, and a tenant's token never opens the
	// dashboard. At least MinTokenBytes.
	Token string
	// Registry, if set, lists tenants with their limits and lets the
	// operator suspend and resume them.
	Registry tenancy.Admin
	// Projections are the log's projections besides the rows read model,
	// shown with their checkpoints (async ones) and offered for rebuild.
	Projections []Projection
	// Rebuild, if set, rebuilds the named projection (the operator's
	// "rebuild" action); it may take long, and runs on the request.
	Rebuild func(ctx context.Context, name string) error
	// Jobs, if set, is the node's job queue: the dashboard lists jobs
	// with their states, retries and cancels them, and runs compaction
	// and rebuilds as jobs (any node may run them) rather than on the
	// request.
	Jobs *jobs.Jobs
	// Interval is how often the live view refreshes (default 2s); the
	// figures are computed at most once an interval, whoever watches.
	Interval time.Duration
	// Logger records operators' actions (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Projection names one of the log's projections.
type Projection struct {
	Name  string `json:"name"`
	Async bool   `json:"async"`
}

// Handler serves the dashboard under /admin/. Mount it at "/admin/".
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	session string        // the session cookie's value: an HMAC of the token
	logins  *rate.Limiter // failed logins, over all clients

	mu   sync.Mutex
	last *sample   // the previous sample: rates and latencies are deltas from it
	view *Overview // the latest overview, reused within Interval
}

//go:embed static
var static embed.FS

// New returns the dashboard's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Server == nil {
		return nil, ErrNoServer
	}
	if len(cfg.Token) < MinTokenBytes {
		return nil, ErrWeakToken
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	mac := hmac.New(sha256.New, []byte(cfg.Token))
	mac.Write([]byte("uno admin session v1"))
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), session: hex.EncodeToString(mac.Sum(nil)),
		logins: rate.NewLimiter(rate.Every(time.Second), 5)}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /admin/login", h.serveLoginPage)
	m.HandleFunc("POST /admin/login", h.serveLogin)
	m.HandleFunc("POST /admin/logout", h.serveLogout)
	m.Handle("GET /admin/{$}", h.page(h.serveDashboard))
	// The page's scripts and styles: the login page needs them before
	// any session, and they hold nothing of the server's.
	m.Handle("GET /admin/static/", http.StripPrefix("/admin/", http.FileServerFS(static)))
	m.Handle("GET /admin/api/overview", h.api(h.serveOverview))
	m.Handle("GET /admin/api/events", h.api(h.serveEvents))
	m.Handle("POST /admin/api/tenants/{id}/suspend", h.api(h.serveSuspend(true)))
	m.Handle("POST /admin/api/tenants/{id}/resume", h.api(h.serveSuspend(false)))
	m.Handle("POST /admin/api/tenants/{id}/compact", h.api(h.serveCompact))
	m.Handle("POST /admin/api/projections/{name}/rebuild", h.api(h.serveRebuild))
	m.Handle("POST /admin/api/jobs/{id}/retry", h.api(h.serveJob(true)))
	m.Handle("POST /admin/api/jobs/{id}/cancel", h.api(h.serveJob(false)))
	m.Handle("GET /admin/debug/pprof/", h.api(pprof.Index))
	m.Handle("GET /admin/debug/pprof/cmdline", h.api(pprof.Cmdline))
	m.Handle("GET /admin/debug/pprof/profile", h.api(pprof.Profile))
	m.Handle("GET /admin/debug/pprof/symbol", h.api(pprof.Symbol))
	m.Handle("GET /admin/debug/pprof/trace", h.api(pprof.Trace))
	m.Handle("/admin/", h.api(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such admin endpoint: see the server package's doc (# Admin dashboard)")
	}))
}

// ServeHTTP serves the dashboard, its API and pprof.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether the request carries the admin token
// (Authorization: Bearer) or the session cookie; viaCookie says which.
func (h *Handler) authorized(r *http.Request) (ok, viaCookie bool) {
	if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		return equal(tok, h.cfg.Token), false
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return equal(c.Value, h.session), true
	}
	return false, false
}

const cookieName = "uno_admin"

// equal compares in time independent of where the strings differ (and of
// their lengths: both are hashed first).
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// api wraps an API endpoint: the token or the session cookie, and for a
// cookie's state-changing request the X-Uno-Admin header, which a page of
// another site cannot send (cross-site request forgery).
func (h *Handler) api(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, viaCookie := h.authorized(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="uno admin"`)
			apiError(w, http.StatusUnauthorized, "unauthorized", "the admin dashboard needs the admin token (Authorization: Bearer), not a tenant's token")
			return
		}
		if viaCookie && r.Method != http.MethodGet && r.Header.Get("X-Uno-Admin") != "1" {
			apiError(w, http.StatusForbidden, "csrf", "a state-changing request with the session cookie needs the header X-Uno-Admin: 1")
			return
		}
		f(w, r)
	})
}

// page wraps a page: without a session it goes to the login page.
func (h *Handler) page(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, _ := h.authorized(r); !ok {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		f(w, r)
	})
}

func (h *Handler) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	b, _ := static.ReadFile("static/login.html")
	w.Write(b)
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "want a form with the field token")
		return
	}
	if !equal(r.PostForm.Get("token"), h.cfg.Token) {
		if !h.logins.Allow() {
			apiError(w, http.StatusTooManyRequests, "rate_limited", "too many failed logins: wait a second")
			return
		}
		h.cfg.Logger.Warn("admin login refused", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/admin/login?failed=1", http.StatusSeeOther)
		return
	}
	h.cfg.Logger.Info("admin login", "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: h.session, Path: "/admin/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 12 * 3600})
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/admin/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	b, _ := static.ReadFile("static/index.html")
	w.Write(b)
}

func (h *Handler) serveOverview(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.overview(r.Context()))
}

// serveEvents streams the overview as Server-Sent Events, one "overview"
// event an Interval, until the client goes or the server shuts down.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	// A stream outlives the server's read and write timeouts.
	rc.SetReadDeadline(time.Time{})
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		b, _ := json.Marshal(h.overview(r.Context()))
		if _, err := fmt.Fprintf(w, "event: overview\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
}

func (h *Handler) serveSuspend(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if h.cfg.Registry == nil {
			apiError(w, http.StatusNotImplemented, "no_registry", "suspending needs the tenant registry: start uno serve with --registry")
			return
		}
		if err := h.cfg.Registry.SetSuspended(r.Context(), id, suspend); err != nil {
			if errors.Is(err, tenancy.ErrUnknownTenant) {
				apiError(w, http.StatusNotFound, "unknown_tenant", fmt.Sprintf("no tenant %q in the registry", id))
				return
			}
			h.cfg.Logger.Error("admin: suspend", "tenant", id, "err", err)
			apiError(w, http.StatusServiceUnavailable, "unavailable", "the registry did not answer: retry later")
			return
		}
		ended := 0
		if suspend {
			ended = h.cfg.Server.EndSessions(id, "tenant suspended by an operator")
		}
		h.cfg.Logger.Warn("admin: tenant "+map[bool]string{true: "suspended", false: "resumed"}[suspend], "tenant", id, "sessions_ended", ended, "remote", r.RemoteAddr)
		h.invalidate()
		writeJSON(w, http.StatusOK, map[string]any{"tenant": id, "suspended": suspend, "sessions_ended": ended})
	}
}

func (h *Handler) serveCompact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h.cfg.Jobs != nil {
		h.enqueue(w, r, jobs.CompactArgs{Tenant: id, By: "admin"})
		return
	}
	res, err := h.cfg.Server.Compact(r.Context(), id, math.MaxUint64)
	if err != nil {
		h.cfg.Logger.Error("admin: compact", "tenant", id, "err", err)
		apiError(w, http.StatusServiceUnavailable, "compaction_failed", "compaction failed (the server's log says why): retry later")
		return
	}
	h.cfg.Logger.Info("admin: compacted", "tenant", id, "rewritten", res.Rewritten, "floor", res.Floor, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"tenant": id, "floor": res.Floor, "rewritten": res.Rewritten, "bytes_saved": res.Saved})
}

func (h *Handler) serveRebuild(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if h.cfg.Rebuild == nil && h.cfg.Jobs == nil {
		apiError(w, http.StatusNotImplemented, "no_rebuild", "this server cannot rebuild projections (use uno projection rebuild)")
		return
	}
	known := false
	for _, p := range h.cfg.Projections {
		known = known || p.Name == name
	}
	if !known {
		apiError(w, http.StatusNotFound, "unknown_projection", fmt.Sprintf("no projection %q", name))
		return
	}
	if h.cfg.Jobs != nil {
		h.enqueue(w, r, jobs.RebuildArgs{Projection: name})
		return
	}
	start := h.cfg.Now()
	if err := h.cfg.Rebuild(r.Context(), name); err != nil {
		h.cfg.Logger.Error("admin: rebuild", "projection", name, "err", err)
		apiError(w, http.StatusServiceUnavailable, "rebuild_failed", "the rebuild failed (the server's log says why): retry later")
		return
	}
	took := h.cfg.Now().Sub(start)
	h.cfg.Logger.Info("admin: projection rebuilt", "projection", name, "duration", took, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"projection": name, "seconds": took.Seconds()})
}

// enqueue queues a job for an action and answers with it (202: queued,
// or the same work already waiting or running).
func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request, a jobs.Args) {
	e, err := h.cfg.Jobs.Enqueue(r.Context(), a, nil)
	if err != nil {
		if errors.Is(err, jobs.ErrBadArgs) {
			apiError(w, http.StatusBadRequest, "bad_job", err.Error())
			return
		}
		h.cfg.Logger.Error("admin: enqueue", "kind", a.Kind(), "err", err)
		apiError(w, http.StatusServiceUnavailable, "unavailable", "the job queue did not answer: retry later")
		return
	}
	h.cfg.Logger.Info("admin: job enqueued", "kind", a.Kind(), "job", e.Job.ID, "duplicate", e.Duplicate, "remote", r.RemoteAddr)
	h.invalidate()
	writeJSON(w, http.StatusAccepted, map[string]any{"job": e.Job.ID, "kind": e.Job.Kind, "state": e.Job.State, "duplicate": e.Duplicate})
}

// serveJob retries or cancels a job.
func (h *Handler) serveJob(retry bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.Jobs == nil {
			apiError(w, http.StatusNotImplemented, "no_jobs", "this server runs no job queue")
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			apiError(w, http.StatusBadRequest, "bad_request", "a job ID is a positive integer")
			return
		}
		var j jobs.Job
		if retry {
			j, err = h.cfg.Jobs.Retry(r.Context(), id)
		} else {
			j, err = h.cfg.Jobs.Cancel(r.Context(), id)
		}
		if err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				apiError(w, http.StatusNotFound, "unknown_job", fmt.Sprintf("no job %d", id))
				return
			}
			h.cfg.Logger.Error("admin: job", "job", id, "retry", retry, "err", err)
			apiError(w, http.StatusServiceUnavailable, "unavailable", "the job queue did not answer: retry later")
			return
		}
		h.cfg.Logger.Info("admin: job "+map[bool]string{true: "retried", false: "cancelled"}[retry], "job", id, "remote", r.RemoteAddr)
		h.invalidate()
		writeJSON(w, http.StatusOK, map[string]any{"job": j.ID, "state": j.State})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "error": msg})
}
