// Command notes is a collaborative notes app on uno's doc fields. Each
// note's body is an Automerge document: two people edit the same note
// offline, sync through uno serve, and see one merged text — concurrent
// insertions interleave by place, never by character. The note also
// records who edited it.
//
//	go run ./examples/notes new Shopping
//	go run ./examples/notes append 4f2a "milk, eggs"
//	go run ./examples/notes insert 4f2a 0 "Today: "
//	go run ./examples/notes edit 4f2a                # in $EDITOR; only the difference is sent
//	go run ./examples/notes show 4f2a
//	UNO_TOKEN=... go run ./examples/notes sync      # with go run ./cmd/uno serve running
//
// Notes are addressed by the end of their ID, as list prints it. The
// browser page in examples/web/notes.html edits the same notes.
package main
