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
// # Sessions
//
// [ClientSession] and [ServerSession] are the two ends of one connection:
// Hello and Welcome open it; Push and Ack carry the client's writes;
// Changes, or Snapshot chunks while bootstrapping, carry the tenant's log
// to the client against the credits it grants with Credit (never the
// client's own transactions: the Ack covers those); Reject refuses
// one pushed transaction; Ping and Pong are heartbeats and barriers; Error
// ends the session with a code.
//
// # Epochs
//
// From version 3 on, each Push names the epoch that wrote its
// transactions: a random number each opening of the replica's store
// draws. The server records each site's runs (from which seq on which
// epoch wrote). A replica whose database went back to an earlier state
// (a restored copy, a power cut under relaxed durability) cannot know
// it, and its next writes may take sequence numbers the server holds for
// the writes it lost; but they carry a new epoch. So when Welcome's
// high-water mark covers some of the replica's unacknowledged writes,
// the client sends Check and compares the server's Runs with its own
// before taking the mark as an acknowledgement ([Diverged]), a Check at
// a time, from past the last answer, until an answer reaches its
// writes or the mark (one carries a bounded number of runs); from the
// first seq that differs, the replica moves its writes to a new site
// (ClientReady.Fork), closes with CodeForked and connects again as it.
//
// # Credentials
//
// The tenant comes from Hello's token, never from a payload. Welcome says
// when the token expires. Before then the client may renew it in band:
// Auth carries a fresh token, which the server verifies as it verified
// Hello's and answers with AuthOK and the new expiry, without interrupting
// the session. A token the server refuses closes the session with the
// refusal's code (CodeUnauthorized, CodeTokenExpired), and so does a token
// of another tenant (CodeForbidden): the tenant never changes within a
// session. A session whose token expires closes with CodeTokenExpired.
//
// The package is pure: no sockets, no SQL, no clock reads.
package sync
