// Package e2e holds end-to-end tests: real clients (SQLite files) syncing
// with a real server (the embedded SQLite log) over WebSockets on
// loopback. It has no non-test code.
package e2e
