package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "notes:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
		}
		os.Exit(1)
	}
}

// schema declares the notes: a title and a body document holding the
// text ("text") and who edited it ("editors": name → last edit).
var schema = &store.Schema{
	Version: 1,
	Collections: []store.Collection{{
		Name:   "notes",
		Fields: []store.Field{{Name: "title"}, {Name: "created"}, {Name: "body", Kind: crdt.KindDoc}},
	}},
}

var (
	textPath    = client.Path{"text"}
	editorsPath = client.Path{"editors"}
)

// errUsage reports a command line that does not parse; main prints usage.
var errUsage = errors.New("bad command line")

const usage = `usage: notes [-db FILE] [-server URL] [-token TOKEN] [-as NAME] COMMAND

commands:
  new TITLE...             start a note
  list                     list the notes
  show ID                  print a note and who edited it
  append ID TEXT...        add text at the end
  insert ID POS TEXT...    insert text at character POS
  delete ID POS COUNT      delete COUNT characters at POS
  edit ID                  edit the text in $EDITOR (only the difference is sent)
  sync                     sync with the server (go run ./cmd/uno serve)
`

type env struct {
	ctx   context.Context
	c     *client.Client
	notes *client.Collection
	as    string
	out   io.Writer
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("notes", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	db := fs.String("db", "notes.db", "the SQLite file holding the notes")
	srv := fs.String("server", "ws://127.0.0.1:8080/v1/sync", "the uno server to sync with")
	token := fs.String("token", os.Getenv("UNO_TOKEN"), "the token uno serve printed (default $UNO_TOKEN)")
	as := fs.String("as", defaultName(), "the name your edits are shown under")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return errUsage
	}
	c, err := client.Open(ctx, client.Config{Path: *db, Schema: schema, Server: *srv, Token: *token, ManualSync: true})
	if err != nil {
		return err
	}
	defer c.Close()
	e := &env{ctx: ctx, c: c, notes: c.Collection("notes"), as: *as, out: out}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "new":
		if len(rest) == 0 {
			return errUsage
		}
		return e.create(strings.Join(rest, " "))
	case "list":
		return e.list()
	case "sync":
		if err := c.Sync(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "synced with %s\n", *srv)
		return nil
	}
	if len(rest) == 0 {
		return errUsage
	}
	id, err := e.resolve(rest[0])
	if err != nil {
		return err
	}
	rest = rest[1:]
	switch cmd {
	case "show":
		return e.show(id)
	case "append":
		return e.edit(id, func(text string) (int, int, string, error) {
			return utf8.RuneCountInString(text), 0, strings.Join(rest, " "), nil
		})
	case "insert", "delete":
		if len(rest) < 2 {
			return errUsage
		}
		pos, err := strconv.Atoi(rest[0])
		if err != nil || pos < 0 {
			return fmt.Errorf("position %q: want a character count from 0: %w", rest[0], errUsage)
		}
		return e.edit(id, func(string) (int, int, string, error) {
			if cmd == "insert" {
				return pos, 0, strings.Join(rest[1:], " "), nil
			}
			n, err := strconv.Atoi(rest[1])
			if err != nil || n < 0 {
				return 0, 0, "", fmt.Errorf("count %q: %w", rest[1], errUsage)
			}
			return pos, n, "", nil
		})
	case "edit":
		return e.edit(id, func(text string) (int, int, string, error) {
			edited, err := editInEditor(text)
			if err != nil {
				return 0, 0, "", err
			}
			pos, del, ins := diff(text, edited)
			return pos, del, ins, nil
		})
	}
	return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
}

func defaultName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "someone"
}

func (e *env) create(title string) error {
	id := client.NewID()
	err := e.c.Tx(e.ctx, func(tx *client.Tx) error {
		if err := tx.Put("notes", id, map[string]any{"title": title, "created": time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
			return err
		}
		// The text object is made once, here: two replicas that each
		// created it would make two texts, and Automerge keeps one.
		d, err := tx.Doc("notes", id, "body")
		if err != nil {
			return err
		}
		return errors.Join(d.Put(textPath, ""), d.Splice(textPath, 0, 0, ""), d.Put(editorsPath, map[string]any{}),
			d.Put(append(editorsPath, e.as), time.Now().UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "new note %s\n", short(id))
	return nil
}

// edit applies one splice, computed from the current text, and records
// the editor, in one transaction.
func (e *env) edit(id string, splice func(text string) (pos, del int, ins string, err error)) error {
	var changed bool
	err := e.notes.EditDoc(e.ctx, id, "body", func(d *client.DocEdit) error {
		text, err := d.Text(textPath)
		if err != nil {
			return err
		}
		pos, del, ins, err := splice(text)
		if err != nil {
			return err
		}
		if n := utf8.RuneCountInString(text); pos > n || pos+del > n {
			return fmt.Errorf("the note has %d characters: cannot edit at %d..%d", n, pos, pos+del)
		}
		if del == 0 && ins == "" {
			return nil
		}
		changed = true
		return errors.Join(d.Splice(textPath, pos, del, ins), d.Put(append(editorsPath, e.as), time.Now().UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintln(e.out, "no change")
		return nil
	}
	return e.show(id)
}

type body struct {
	Text    string            `json:"text"`
	Editors map[string]string `json:"editors"`
}

func (e *env) read(id string) (title string, b body, err error) {
	d, err := e.notes.Get(e.ctx, id)
	if err != nil {
		return "", b, err
	}
	_ = json.Unmarshal(d.Fields["title"], &title)
	if raw, ok := d.Fields["body"]; ok {
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", b, err
		}
	}
	return title, b, nil
}

func (e *env) show(id string) error {
	title, b, err := e.read(id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "# %s (%s)\n%s\n", title, short(id), b.Text)
	names := make([]string, 0, len(b.Editors))
	for name := range b.Editors {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Fprintf(e.out, "-- edited by %s\n", strings.Join(names, ", "))
	return nil
}

func (e *env) list() error {
	docs, err := e.notes.Find(e.ctx, client.Query{OrderBy: "created"})
	if err != nil {
		return err
	}
	for _, d := range docs {
		title, b, err := e.read(d.ID)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(b.Text, "\n")
		if n := utf8.RuneCountInString(first); n > 40 {
			first = string([]rune(first)[:40]) + "…"
		}
		fmt.Fprintf(e.out, "%s  %-20s %s\n", short(d.ID), title, first)
	}
	n, err := e.c.Pending(e.ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%d notes, %d changes not yet synced\n", len(docs), n)
	return nil
}

// diff returns one splice that turns a into b: the common prefix and
// suffix stay, so concurrent edits elsewhere in the text merge.
func diff(a, b string) (pos, del int, ins string) {
	ra, rb := []rune(a), []rune(b)
	p := 0
	for p < len(ra) && p < len(rb) && ra[p] == rb[p] {
		p++
	}
	s := 0
	for s < len(ra)-p && s < len(rb)-p && ra[len(ra)-1-s] == rb[len(rb)-1-s] {
		s++
	}
	return p, len(ra) - p - s, string(rb[p : len(rb)-s])
}

func editInEditor(text string) (string, error) {
	f, err := os.CreateTemp("", "note-*.txt")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return "", err
	}
	f.Close()
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.Command("sh", "-c", editor+` "$1"`, "editor", f.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", editor, err)
	}
	b, err := os.ReadFile(f.Name())
	return string(b), err
}

// short returns the end of an ID, which is its random part.
func short(id string) string { return id[max(0, len(id)-8):] }

// resolve finds the one note whose ID ends with suffix.
func (e *env) resolve(suffix string) (string, error) {
	docs, err := e.notes.Find(e.ctx, client.Query{})
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
		return "", fmt.Errorf("no note ends with %q", suffix)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%d notes end with %q: give more of the ID", len(match), suffix)
}
