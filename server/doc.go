// Package server will hold uno's sync server: the WebSocket endpoint, the
// per-tenant event log (Postgres and SQLite), fan-out and read models.
//
// It is not implemented yet; the local engine (crdt, conflict, store,
// client) comes first. See the repository README for what works today.
package server
