package client_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/store"
)

// seedFind writes the rows TestCollection_Find queries.
func seedFind(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	col := c.Collection("fruits")
	rows := []struct {
		id  string
		doc map[string]any
	}{
		{"t1", map[string]any{"title": "apple", "rank": 1, "done": false, "score": 1.5}},
		{"t2", map[string]any{"title": "banana", "rank": 2, "done": true}},
		{"t3", map[string]any{"title": "cherry", "rank": 3, "done": false}},
		{"t4", map[string]any{"title": "date", "rank": 4, "done": true}},
		{"t5", map[string]any{"title": "elder", "done": false}}, // no rank
		{"t6", map[string]any{"title": "fig", "rank": 2, "done": false}},
	}
	for _, r := range rows {
		must(t, col.Put(ctx, r.id, r.doc))
	}
	must(t, col.Increment(ctx, "t1", "views", 5))
	must(t, col.Increment(ctx, "t2", "views", -1))
	must(t, col.Increment(ctx, "t3", "views", 10))
	must(t, col.Delete(ctx, "t6")) // deleted rows never match
}

func TestCollection_Find(t *testing.T) {
	ctx := context.Background()
	where := func(cs ...client.Cond) client.Query { return client.Query{Where: cs} }
	w := client.Where
	tests := []struct {
		name string
		q    client.Query
		want []string
	}{
		{"all, by id", client.Query{}, []string{"t1", "t2", "t3", "t4", "t5"}},
		{"=", where(w("rank", "=", 2)), []string{"t2"}},
		{"!=", where(w("rank", "!=", 2)), []string{"t1", "t3", "t4"}}, // a missing rank is not != 2
		{"<", where(w("rank", "<", 3)), []string{"t1", "t2"}},
		{"<=", where(w("rank", "<=", 3)), []string{"t1", "t2", "t3"}},
		{">", where(w("rank", ">", 2)), []string{"t3", "t4"}},
		{">=", where(w("rank", ">=", 2)), []string{"t2", "t3", "t4"}},
		{"float bound", where(w("rank", ">=", 1.5)), []string{"t2", "t3", "t4"}},
		{"float field", where(w("score", "=", 1.5)), []string{"t1"}},
		{"= false", where(w("done", "=", false)), []string{"t1", "t3", "t5"}},
		{"= true", where(w("done", "=", true)), []string{"t2", "t4"}},
		{"string =", where(w("title", "=", "cherry")), []string{"t3"}},
		{"string >", where(w("title", ">", "b")), []string{"t2", "t3", "t4", "t5"}},
		{"string <=", where(w("title", "<=", "cherry")), []string{"t1", "t2", "t3"}},
		{"numbers sort before strings", where(w("rank", "<", "a")), []string{"t1", "t2", "t3", "t4"}},
		{"= nil is missing", where(w("rank", "=", nil)), []string{"t5"}},
		{"!= nil is present", where(w("rank", "!=", nil)), []string{"t1", "t2", "t3", "t4"}},
		{"never written field", where(w("nope", "=", nil)), []string{"t1", "t2", "t3", "t4", "t5"}},
		{"never written field with a value", where(w("nope", "=", 1)), []string{}},
		{"counter", where(w("views", ">", 0)), []string{"t1", "t3"}},
		{"negative counter", where(w("views", "<", 0)), []string{"t2"}},
		{"id", where(w("id", ">=", "t4")), []string{"t4", "t5"}},
		{"conditions all hold", where(w("done", "=", false), w("rank", ">", 1)), []string{"t3"}},
		{"no match", where(w("rank", ">", 100)), []string{}},
		{"order by field asc, missing first", client.Query{OrderBy: "rank"}, []string{"t5", "t1", "t2", "t3", "t4"}},
		{"order by field desc, missing last", client.Query{OrderBy: "rank", Desc: true}, []string{"t4", "t3", "t2", "t1", "t5"}},
		{"order by string desc", client.Query{OrderBy: "title", Desc: true}, []string{"t5", "t4", "t3", "t2", "t1"}},
		{"order by counter", client.Query{OrderBy: "views"}, []string{"t4", "t5", "t2", "t1", "t3"}},
		{"ties by id", client.Query{OrderBy: "done"}, []string{"t1", "t3", "t5", "t2", "t4"}},
		{"ties by id ascending when desc", client.Query{OrderBy: "done", Desc: true}, []string{"t2", "t4", "t1", "t3", "t5"}},
		{"order by id desc", client.Query{OrderBy: "id", Desc: true}, []string{"t5", "t4", "t3", "t2", "t1"}},
		{"desc without order by is by id", client.Query{Desc: true}, []string{"t5", "t4", "t3", "t2", "t1"}},
		{"limit", client.Query{OrderBy: "rank", Desc: true, Limit: 2}, []string{"t4", "t3"}},
		{"limit with where", client.Query{Where: []client.Cond{w("done", "=", false)}, OrderBy: "title", Limit: 2}, []string{"t1", "t3"}},
		{"limit above the count", client.Query{Limit: 10}, []string{"t1", "t2", "t3", "t4", "t5"}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{})
			seedFind(t, c)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					docs, err := c.Collection("fruits").Find(ctx, tt.q)
					must(t, err)
					got := ids(docs)
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("Find (-want +got):\n%s", diff)
					}
					for _, d := range docs {
						if diff := cmp.Diff(fields(get(t, c, "fruits", d.ID)), fields(d)); diff != "" {
							t.Errorf("Find's %s differs from Get's (-get +find):\n%s", d.ID, diff)
						}
					}
				})
			}
			if got := find(t, c, "never_written", client.Query{Where: []client.Cond{w("a", "=", 1)}}); len(got) != 0 {
				t.Errorf("Find in a collection never written: %v", ids(got))
			}
		})
	}
}

func TestCollection_FindBadQuery(t *testing.T) {
	ctx := context.Background()
	w := client.Where
	schema := &store.Schema{Collections: []store.Collection{{Name: "fruits", Fields: []store.Field{
		{Name: "title"}, {Name: "rank"}, {Name: "views", Kind: crdt.KindCounter},
	}}}}
	tests := []struct {
		name     string
		declared bool
		q        client.Query
		want     error
	}{
		{"negative limit", false, client.Query{Limit: -1}, store.ErrInvalidQuery},
		{"unknown operator", false, client.Query{Where: []client.Cond{w("rank", "~", 1)}}, store.ErrInvalidQuery},
		{"empty operator", false, client.Query{Where: []client.Cond{w("rank", "", 1)}}, store.ErrInvalidQuery},
		{"< null", false, client.Query{Where: []client.Cond{w("rank", "<", nil)}}, store.ErrInvalidQuery},
		{"value not JSON", false, client.Query{Where: []client.Cond{w("rank", "=", make(chan int))}}, store.ErrInvalidQuery},
		{"invalid where field", false, client.Query{Where: []client.Cond{w("Rank", "=", 1)}}, client.ErrInvalidName},
		{"invalid order field", false, client.Query{OrderBy: "Rank"}, client.ErrInvalidName},
		{"where on an unknown field", true, client.Query{Where: []client.Cond{w("nope", "=", 1)}}, client.ErrUnknownField},
		{"order by an unknown field", true, client.Query{OrderBy: "nope"}, client.ErrUnknownField},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			plain := open(t, b, client.Config{})
			declared := open(t, b, client.Config{Schema: schema})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := plain
					if tt.declared {
						c = declared
					}
					_, err := c.Collection("fruits").Find(ctx, tt.q)
					wantErr(t, err, tt.want)
					w, err := c.Collection("fruits").Watch(ctx, tt.q)
					if w != nil {
						w.Close()
					}
					wantErr(t, err, tt.want)
				})
			}
			// Declared fields, written or not, can be queried.
			must(t, declared.Collection("fruits").Put(ctx, "f1", map[string]any{"title": "apple"}))
			got := ids(find(t, declared, "fruits", client.Query{Where: []client.Cond{w("rank", "=", nil)}, OrderBy: "views"}))
			if !cmp.Equal(got, []string{"f1"}) {
				t.Errorf("Find on declared fields: %v, want [f1]", got)
			}
		})
	}
}
