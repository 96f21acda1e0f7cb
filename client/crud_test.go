package client_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
)

type todo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
	Rank  int    `json:"rank,omitempty"`
	Note  string `json:"note,omitempty"`
}

func TestCollection_CRUD(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, c *client.Client)
	}{
		{"put get round trip", func(t *testing.T, c *client.Client) {
			in := todo{ID: "t1", Title: "Buy milk ✓", Done: true, Rank: 7}
			must(t, c.Collection("todos").Put(ctx, "t1", in))
			d := get(t, c, "todos", "t1")
			if d.ID != "t1" {
				t.Errorf("Doc.ID = %q, want t1", d.ID)
			}
			var out todo
			must(t, d.Decode(&out))
			if diff := cmp.Diff(in, out); diff != "" {
				t.Errorf("decoded (-put +got):\n%s", diff)
			}
			wantFields(t, c, "todos", "t1", map[string]string{"title": `"Buy milk ✓"`, "done": "true", "rank": "7"})
		}},
		{"put of a struct with an empty id", func(t *testing.T, c *client.Client) {
			must(t, c.Collection("todos").Put(ctx, "t1", todo{Title: "no id"}))
			var out todo
			must(t, get(t, c, "todos", "t1").Decode(&out))
			if diff := cmp.Diff(todo{ID: "t1", Title: "no id"}, out); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		}},
		{"put without id and with nested values", func(t *testing.T, c *client.Client) {
			must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{"meta": map[string]any{"b": []int{1, 2}, "a": nil}, "n": 1.5}))
			wantFields(t, c, "todos", "t1", map[string]string{"meta": `{"a":null,"b":[1,2]}`, "n": "1.5"})
		}},
		{"put keeps fields not in the doc", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a", "note": "keep me"}))
			must(t, col.Put(ctx, "t1", map[string]any{"title": "b"}))
			wantFields(t, c, "todos", "t1", map[string]string{"title": `"b"`, "note": `"keep me"`})
		}},
		{"null clears a field", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", todo{ID: "t1", Title: "a", Note: "gone soon"}))
			must(t, col.Put(ctx, "t1", map[string]any{"note": nil}))
			d := get(t, c, "todos", "t1")
			if v, ok := d.Fields["note"]; ok && string(v) != "null" {
				t.Errorf("note after writing null = %s, want null or absent", v)
			}
			var out todo
			must(t, d.Decode(&out))
			if out.Note != "" || out.Title != "a" {
				t.Errorf("decoded %+v, want empty note and title a", out)
			}
			if got := ids(find(t, c, "todos", client.Query{Where: []client.Cond{client.Where("note", "=", nil)}})); !cmp.Equal(got, []string{"t1"}) {
				t.Errorf("rows with note = null: %v, want [t1]", got)
			}
		}},
		{"patch of a missing row", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			wantErr(t, c.Collection("todos").Patch(ctx, "nope", map[string]any{"title": "a"}), client.ErrNotFound)
			if after := snap(t, c); after != before {
				t.Errorf("a failed Patch changed the replica")
			}
			if _, err := c.Collection("todos").Get(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("Get after failed Patch: %v, want ErrNotFound", err)
			}
		}},
		{"patch of an existing row", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a", "done": false}))
			must(t, col.Patch(ctx, "t1", map[string]any{"done": true}))
			wantFields(t, c, "todos", "t1", map[string]string{"title": `"a"`, "done": "true"})
		}},
		{"patch of a deleted row", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a"}))
			must(t, col.Delete(ctx, "t1"))
			wantErr(t, col.Patch(ctx, "t1", map[string]any{"title": "b"}), client.ErrNotFound)
			wantErr(t, getErr(c, "todos", "t1"), client.ErrNotFound)
		}},
		{"delete then get", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a"}))
			must(t, col.Put(ctx, "t2", map[string]any{"title": "b"}))
			must(t, col.Delete(ctx, "t1"))
			wantErr(t, getErr(c, "todos", "t1"), client.ErrNotFound)
			if got := ids(find(t, c, "todos", client.Query{})); !cmp.Equal(got, []string{"t2"}) {
				t.Errorf("Find after delete: %v, want [t2]", got)
			}
		}},
		{"delete of a missing row", func(t *testing.T, c *client.Client) {
			before := snap(t, c)
			must(t, c.Collection("todos").Delete(ctx, "nope"))
			if after := snap(t, c); after != before {
				t.Errorf("deleting a missing row changed the replica (pending %d → %d)", before.Pending, after.Pending)
			}
		}},
		{"put after delete revives with only the new fields", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			must(t, col.Put(ctx, "t1", map[string]any{"title": "a", "note": "old"}))
			must(t, col.Increment(ctx, "t1", "views", 4))
			must(t, col.Add(ctx, "t1", "tags", "old"))
			must(t, col.Delete(ctx, "t1"))
			must(t, col.Put(ctx, "t1", map[string]any{"title": "b"}))
			wantFields(t, c, "todos", "t1", map[string]string{"title": `"b"`})
			// A field of the old life may now hold another kind.
			must(t, col.Put(ctx, "t1", map[string]any{"views": "many"}))
			wantFields(t, c, "todos", "t1", map[string]string{"title": `"b"`, "views": `"many"`})
			if db := c.DB(); db != nil {
				var note, tags sql.NullString
				must(t, db.QueryRowContext(ctx, `SELECT note, tags FROM todos WHERE id = 't1'`).Scan(&note, &tags))
				if note.Valid || tags.Valid {
					t.Errorf("revived row's SQL columns note=%v tags=%v, want NULL", note, tags)
				}
			}
		}},
		{"put of an empty doc creates the row", func(t *testing.T, c *client.Client) {
			must(t, c.Collection("todos").Put(ctx, "t1", map[string]any{}))
			wantFields(t, c, "todos", "t1", map[string]string{})
			if got := ids(find(t, c, "todos", client.Query{})); !cmp.Equal(got, []string{"t1"}) {
				t.Errorf("Find: %v, want [t1]", got)
			}
		}},
		{"increment", func(t *testing.T, c *client.Client) {
			col := c.Collection("stats")
			must(t, col.Increment(ctx, "s1", "views", 5)) // creates the row
			wantFields(t, c, "stats", "s1", map[string]string{"views": "5"})
			must(t, col.Increment(ctx, "s1", "views", -7))
			must(t, col.Increment(ctx, "s1", "views", 3))
			wantFields(t, c, "stats", "s1", map[string]string{"views": "1"})
			must(t, col.Increment(ctx, "s1", "views", 0))
			wantFields(t, c, "stats", "s1", map[string]string{"views": "1"})
		}},
		{"set add and remove", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			for _, m := range []string{"work", "home", "urgent", "home"} {
				must(t, col.Add(ctx, "t1", "tags", m))
			}
			wantFields(t, c, "todos", "t1", map[string]string{"tags": `["home","urgent","work"]`})
			must(t, col.Remove(ctx, "t1", "tags", "urgent"))
			before := snap(t, c)
			must(t, col.Remove(ctx, "t1", "tags", "never added"))
			if after := snap(t, c); after != before {
				t.Errorf("removing an absent member changed the replica")
			}
			wantFields(t, c, "todos", "t1", map[string]string{"tags": `["home","work"]`})
			must(t, col.Add(ctx, "t1", "tags", "urgent")) // re-add after remove
			wantFields(t, c, "todos", "t1", map[string]string{"tags": `["home","urgent","work"]`})
			must(t, col.Remove(ctx, "t1", "tags", "home"))
			must(t, col.Remove(ctx, "t1", "tags", "urgent"))
			must(t, col.Remove(ctx, "t1", "tags", "work"))
			wantFields(t, c, "todos", "t1", map[string]string{"tags": `[]`})
		}},
		{"set of numbers and booleans", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			for _, m := range []any{3, true, 10, 3} {
				must(t, col.Add(ctx, "t1", "nums", m))
			}
			// Members are ordered by their JSON bytes.
			wantFields(t, c, "todos", "t1", map[string]string{"nums": `[10,3,true]`})
		}},
		{"id of the maximum length", func(t *testing.T, c *client.Client) {
			id := strings.Repeat("é", client.MaxIDBytes/2)
			must(t, c.Collection("todos").Put(ctx, id, map[string]any{"title": "long"}))
			wantFields(t, c, "todos", id, map[string]string{"title": `"long"`})
		}},
		{"ids with quotes, spaces and SQL", func(t *testing.T, c *client.Client) {
			col := c.Collection("todos")
			odd := []string{`it's "quoted"`, "'; DROP TABLE todos; --", "with space", "日本語", "a/b?c#d", "%_"}
			for i, id := range odd {
				must(t, col.Put(ctx, id, map[string]any{"n": i}))
			}
			for i, id := range odd {
				wantFields(t, c, "todos", id, map[string]string{"n": strconv.Itoa(i)})
				got := ids(find(t, c, "todos", client.Query{Where: []client.Cond{client.Where("id", "=", id)}}))
				if !cmp.Equal(got, []string{id}) {
					t.Errorf("Find id = %q: %v", id, got)
				}
			}
			must(t, col.Delete(ctx, odd[1]))
			if got := len(find(t, c, "todos", client.Query{})); got != len(odd)-1 {
				t.Errorf("%d rows after deleting one of %d", got, len(odd))
			}
		}},
		{"fields named like SQL keywords", func(t *testing.T, c *client.Client) {
			col := c.Collection("select")
			must(t, col.Put(ctx, "r1", map[string]any{"order": 2, "group": "b", "from": true}))
			must(t, col.Put(ctx, "r2", map[string]any{"order": 1, "group": "a", "from": false}))
			got := ids(find(t, c, "select", client.Query{Where: []client.Cond{client.Where("from", "!=", nil)}, OrderBy: "order"}))
			if !cmp.Equal(got, []string{"r2", "r1"}) {
				t.Errorf("Find ordered by \"order\": %v, want [r2 r1]", got)
			}
			wantFields(t, c, "select", "r1", map[string]string{"order": "2", "group": `"b"`, "from": "true"})
		}},
		{"longest collection name", func(t *testing.T, c *client.Client) {
			name := "c" + strings.Repeat("_", 62)
			must(t, c.Collection(name).Put(ctx, "r", map[string]any{"f": 1}))
			wantFields(t, c, name, "r", map[string]string{"f": "1"})
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.run(t, open(t, b, client.Config{}))
				})
			}
		})
	}
}

func getErr(c *client.Client, collection, id string) error {
	_, err := c.Collection(collection).Get(context.Background(), id)
	return err
}

// A document whose values are already JSON (map[string]json.RawMessage, as
// the browser bridge passes them) is stored as the same values, compacted;
// a value that is not JSON is refused and writes nothing.
func TestPut_RawJSONValues(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{})
			todos := c.Collection("todos")
			must(t, todos.Put(ctx, "t1", map[string]json.RawMessage{"title": json.RawMessage(`"milk"`), "tags": json.RawMessage(`[ "a", "b" ]`)}))
			d, err := todos.Get(ctx, "t1")
			if err != nil || string(d.Fields["title"]) != `"milk"` || string(d.Fields["tags"]) != `["a","b"]` {
				t.Fatalf("got %v, %v", d.Fields, err)
			}
			err = todos.Put(ctx, "t2", map[string]json.RawMessage{"title": json.RawMessage(`{not json`)})
			if !errors.Is(err, client.ErrInvalidValue) {
				t.Fatalf("invalid JSON: %v, want ErrInvalidValue", err)
			}
			if _, err := todos.Get(ctx, "t2"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("t2 after a refused put: %v", err)
			}
		})
	}
}
