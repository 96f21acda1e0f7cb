// Package sync is uno's wire protocol: the messages, the codec with its
// decode and decompression limits, the error code table shared by clients
// and servers, and the pure client and server session state machines.
//
// The name shadows the standard library's sync package: import it as
// usync everywhere, as in
//
//	import usync "github.com/unosync/uno/sync"
//
// # Frames
//
// Each WebSocket binary message is one frame: a flags byte, then a CBOR
// array [type, body]. Payloads above a threshold are zstd-compressed.
// [Codec] enforces a maximum frame size on the wire, a maximum message size
// after decompression (checked before and while decompressing, so a
// decompression bomb is refused in microseconds), and CBOR limits on array
// lengths and nesting. Every decoding failure is an [*Error] with a [Code].
//
// # Errors
//
// Codes come from one table ([Code]); Error messages, Reject messages and
// close reasons carry them. Match them with errors.Is against the Err
// variables, never by text.
//
// The package is pure: no sockets, no SQL, no clock reads.
package sync
