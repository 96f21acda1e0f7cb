// Package wake wakes readers waiting for a tenant's event log to grow.
// Both event logs use it: they call [Waiters.Advanced] after each commit
// (or on a wake-up from another node), and their Wait registers a channel.
//
// A wait registers first and reads the head second, so an append that
// commits in between is never missed, and nothing a wake-up claims is
// remembered: a wake-up with nothing new (a forged or repeated
// notification) wakes each waiter once, never in a loop. Every waiter is
// removed when it fires or when its context ends, so the set holds only
// the waits in progress.
package wake
