// Package admin is uno serve's operator dashboard: a page at /admin/ and
// the JSON API behind it, guarded by a credential of its own.
//
// # Access
//
// Every endpoint needs the admin token (Config.Token, from uno serve's
// --admin-token-file): as "Authorization: Bearer <token>" for the API and
// pprof, or typed once into /admin/login, which sets an HttpOnly,
// SameSite=Strict session cookie (an HMAC of the token, so changing the
// token ends every session). A tenant's token never opens it. A request
// that changes something with the cookie must also carry the header
// "X-Uno-Admin: 1", which another site's page cannot send. Failed logins
// are rate limited over all clients.
//
// # What it shows
//
// GET /admin/api/overview (and, live, GET /admin/api/events as
// Server-Sent Events) returns an [Overview]: sessions and live query
// streams; appends, deliveries, pushes and bytes per second and the
// p50/p99 of append, push→ack and delivery latency over the last
// interval (from the server's own Prometheus metrics); the query cache's
// hit ratio; tenants with their registry limits, head, rows and bytes;
// each projection's checkpoints and lag by tenant; the live sessions
// (tenant, user, site, address, since, position); errors by protocol
// code. It is computed at most twice an Interval however many watch.
// Nothing in it is row data.
//
// # Actions
//
//	POST /admin/api/tenants/{id}/suspend   suspend in the registry and end the tenant's sessions (code 1102, forbidden)
//	POST /admin/api/tenants/{id}/resume    resume
//	POST /admin/api/tenants/{id}/compact   compact the tenant's log
//	POST /admin/api/projections/{name}/rebuild
//	POST /admin/api/jobs/{id}/retry        run a job again
//	POST /admin/api/jobs/{id}/cancel
//
// With Config.Jobs (uno serve always has a job queue), compaction and
// rebuilds are enqueued as jobs (202, with the job's ID; the same work
// already waiting or running is not queued twice) and the overview lists
// the newest jobs and the counts by state and kind; without it they run
// on the request.
// Each answers JSON, and errors come as {"code": ..., "error": ...}.
// pprof is at /admin/debug/pprof/ behind the same credential.
package admin
