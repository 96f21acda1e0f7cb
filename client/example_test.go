package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/unosync/uno/client"
)

// This is the README's example: open a local store, write, read.
func Example() {
	dir, _ := os.MkdirTemp("", "uno-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	c, err := client.Open(ctx, client.Config{Path: filepath.Join(dir, "app.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	todos := c.Collection("todos")
	_ = todos.Put(ctx, "t1", map[string]any{"title": "Buy milk", "done": false})
	_ = todos.Add(ctx, "t1", "tags", "home")
	_ = todos.Increment(ctx, "t1", "views", 2)

	docs, _ := todos.Find(ctx, client.Query{Where: []client.Cond{client.Where("done", "=", false)}})
	for _, d := range docs {
		fmt.Println(string(d.JSON()))
	}
	n, _ := c.Pending(ctx)
	fmt.Println("pending:", n)
	// Output:
	// {"done":false,"id":"t1","tags":["home"],"title":"Buy milk","views":2}
	// pending: 3
}
