package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "todo:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
		}
		os.Exit(1)
	}
}

// schema declares the one collection the app uses.
var schema = &store.Schema{
	Version: 1,
	Collections: []store.Collection{{
		Name: "todos",
		Fields: []store.Field{
			{Name: "title"},
			{Name: "done"},
			{Name: "created"},
			{Name: "tags", Kind: crdt.KindSet},
		},
		Indexes: []store.Index{{Fields: []string{"done", "created"}}},
	}},
}

type todo struct {
	ID      string   `json:"id,omitempty"`
	Title   string   `json:"title"`
	Done    bool     `json:"done"`
	Created string   `json:"created"`
	Tags    []string `json:"tags,omitempty"` // a set: changed with Add and Remove
}

// errUsage reports a command line that does not parse; main prints usage.
var errUsage = errors.New("bad command line")

const usage = `usage: todo [-db FILE] [-server URL] [-token TOKEN] COMMAND

commands:
  add [-tag TAG]... TITLE...   add a todo
  list [-all]                  list open todos (-all: done ones too)
  done ID                      mark a todo done (ID: any unique end of it)
  remove ID                    remove a todo
  sync                         sync with the server (go run ./cmd/uno serve)
`

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("todo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	db := fs.String("db", "todo.db", "the SQLite file holding the todos")
	srv := fs.String("server", "ws://127.0.0.1:8080/v1/sync", "the uno server to sync with")
	token := fs.String("token", os.Getenv("UNO_TOKEN"), "the token uno serve printed (default $UNO_TOKEN)")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return errUsage
	}
	c, err := client.Open(ctx, client.Config{Path: *db, Schema: schema, Server: *srv, Token: *token})
	if err != nil {
		return err
	}
	defer c.Close()
	todos := c.Collection("todos")

	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "add":
		var tags multiFlag
		afs := flag.NewFlagSet("add", flag.ContinueOnError)
		afs.SetOutput(io.Discard)
		afs.Var(&tags, "tag", "a tag (repeatable)")
		if err := afs.Parse(rest); err != nil || afs.NArg() == 0 {
			return errUsage
		}
		id := client.NewID()
		err := c.Tx(ctx, func(tx *client.Tx) error {
			if err := tx.Put("todos", id, todo{Title: strings.Join(afs.Args(), " "), Created: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
				return err
			}
			for _, t := range tags {
				if err := tx.Add("todos", id, "tags", t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "added %s\n", short(id))
		return nil
	case "list":
		lfs := flag.NewFlagSet("list", flag.ContinueOnError)
		lfs.SetOutput(io.Discard)
		all := lfs.Bool("all", false, "include done todos")
		if err := lfs.Parse(rest); err != nil {
			return errUsage
		}
		q := client.Query{OrderBy: "created"}
		if !*all {
			q.Where = []client.Cond{client.Where("done", "=", false)}
		}
		docs, err := todos.Find(ctx, q)
		if err != nil {
			return err
		}
		for _, d := range docs {
			var t todo
			if err := d.Decode(&t); err != nil {
				return err
			}
			mark := " "
			if t.Done {
				mark = "x"
			}
			line := fmt.Sprintf("%s [%s] %s", short(t.ID), mark, t.Title)
			if len(t.Tags) > 0 {
				line += "  #" + strings.Join(t.Tags, " #")
			}
			fmt.Fprintln(out, line)
		}
		n, err := c.Pending(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d todos, %d changes not yet synced\n", len(docs), n)
		return nil
	case "sync":
		if err := c.Sync(ctx); err != nil {
			return err
		}
		n, err := c.Pending(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "synced with %s (%d changes not yet synced)\n", *srv, n)
		return nil
	case "done", "remove":
		if len(rest) != 1 {
			return errUsage
		}
		id, err := resolve(ctx, todos, rest[0])
		if err != nil {
			return err
		}
		if cmd == "done" {
			err = todos.Patch(ctx, id, map[string]any{"done": true})
		} else {
			err = todos.Delete(ctx, id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s\n", map[string]string{"done": "finished", "remove": "removed"}[cmd], short(id))
		return nil
	}
	return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
}

// short returns the end of an ID, which is its random part.
func short(id string) string { return id[max(0, len(id)-8):] }

// resolve finds the one todo whose ID ends with suffix.
func resolve(ctx context.Context, todos *client.Collection, suffix string) (string, error) {
	docs, err := todos.Find(ctx, client.Query{})
	if err != nil {
		return "", err
	}
	var match []string
	for _, d := range docs {
		if strings.HasSuffix(d.ID, suffix) {
			match = append(match, d.ID)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no todo ends with %q", suffix)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%d todos end with %q: give more of the ID", len(match), suffix)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
