// Command todo is a small command-line todo list on uno's local store. All
// its data is in one SQLite file, and every command works offline.
//
//	go run ./examples/todo add Buy milk
//	go run ./examples/todo list
//	go run ./examples/todo done 4f2a
//	go run ./examples/todo remove 4f2a
//	UNO_TOKEN=... go run ./examples/todo sync   # with go run ./cmd/uno serve running
//
// Rows are addressed by the end of their ID, as list prints it.
package main
