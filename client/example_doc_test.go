//go:build cgo && (linux || darwin) && (amd64 || arm64)

package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/unosync/uno/client"
)

// A doc field holds an Automerge document: collaborative text and nested
// data that several replicas edit at once and merge character by
// character. This is the README's second example.
func ExampleCollection_EditDoc() {
	dir, _ := os.MkdirTemp("", "uno-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "app.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	notes := c.Collection("notes")
	_ = notes.EditDoc(ctx, "n1", "body", func(d *client.DocEdit) error {
		return errors.Join(
			d.Splice(client.Path{"text"}, 0, 0, "Hello world"),
			d.Put(client.Path{"tags"}, []string{"draft"}),
			d.Increment(client.Path{"edits"}, 1))
	})
	_ = notes.Splice(ctx, "n1", "body", client.Path{"text"}, 5, 0, ",")
	text, _ := notes.Text(ctx, "n1", "body", client.Path{"text"})
	doc, _ := notes.ReadDoc(ctx, "n1", "body", nil)
	fmt.Println(text)
	fmt.Println(string(doc))
	// Output:
	// Hello, world
	// {"edits":1,"tags":["draft"],"text":"Hello, world"}
}
