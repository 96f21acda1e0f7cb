// Package sync will hold uno's wire protocol: messages, the codec with its
// decode and decompression limits, and the pure client and server session
// state machines.
//
// The name shadows the standard library's sync package: import it as usync.
// It is not implemented yet.
package sync
