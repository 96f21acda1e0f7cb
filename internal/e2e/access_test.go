package e2e

import (
	"context"
	"time"

	"fmt"
	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	"github.com/unosync/uno/tenancy"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/server"
	usync "github.com/unosync/uno/sync"
)

// userAuth is a test Authenticator whose token is "tenant/user".
type userAuth struct{}

func (userAuth) Authenticate(_ context.Context, token string) (tenancy.Identity, error) {
	tenant, user, ok := strings.Cut(token, "/")
	if !ok || tenant == "" {
		return tenancy.Identity{}, usync.Errorf(usync.CodeUnauthorized, "want tenant/user")
	}
	return tenancy.Identity{Tenant: tenant, User: user}, nil
}

// userClient opens a manual client of e with token, in dir (a fresh one if
// ""), with its subscriptions.
func userClient(t *testing.T, e *env, token, dir string, subs []string, where map[string]map[string]any) *client.Client {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	c, err := client.Open(context.Background(), client.Config{
		Path: filepath.Join(dir, "replica.db"), Server: e.url, Token: token, ManualSync: true,
		Subscriptions: subs, Where: where,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ids returns the IDs of a client's rows of coll, sorted.
func ids(t *testing.T, c *client.Client, coll string) []string {
	t.Helper()
	docs, err := c.Collection(coll).Find(context.Background(), client.Query{})
	if err != nil {
		t.Fatalf("find %s: %v", coll, err)
	}
	var out []string
	for _, d := range docs {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

// Per-collection rules: only a row's owner writes it, nobody creates a row
// for someone else, a read-only collection takes no writes; each refused
// transaction comes back as a Reject with CodeForbidden, is rolled back on
// its client and changes nothing on the server.
func TestRules_OwnerOnly(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{Auth: userAuth{}, Rules: map[string]server.Rule{
		"todos":  {Owner: "owner"},
		"config": {ReadOnly: true},
	}})
	alice := userClient(t, e, "t1/alice", "", nil, nil)
	bob := userClient(t, e, "t1/bob", "", nil, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(alice.Collection("todos").Put(ctx, "a1", map[string]any{"owner": "alice", "title": "alice's"}))
	must(alice.Collection("todos").Put(ctx, "a1", map[string]any{"owner": "alice", "title": "edited"})) // same push, row not yet on the server
	syncCtx(t, alice)
	if rej, _ := alice.Rejections(ctx, 0, 0); len(rej) != 0 {
		t.Fatalf("the owner's writes were refused: %+v", rej)
	}
	syncCtx(t, bob)
	before, _ := e.log.RowsHash(ctx, "t1")

	must(bob.Collection("todos").Put(ctx, "a1", map[string]any{"owner": "alice", "title": "bob was here"})) // 1: not his row
	must(bob.Collection("todos").Delete(ctx, "a1"))                                                         // 2: not his row
	must(bob.Collection("todos").Put(ctx, "b1", map[string]any{"title": "no owner"}))                       // 3: new row without owner
	must(bob.Collection("todos").Put(ctx, "b2", map[string]any{"owner": "alice", "title": "framed"}))       // 4: for someone else
	must(bob.Collection("config").Put(ctx, "c1", map[string]any{"theme": "dark"}))                          // 5: read-only
	syncCtx(t, bob)
	rej, err := bob.Rejections(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 5 {
		t.Fatalf("%d rejections, want 5: %+v", len(rej), rej)
	}
	for _, r := range rej {
		if usync.Code(r.Code) != usync.CodeForbidden {
			t.Errorf("rejection %+v: want CodeForbidden", r)
		}
	}
	if after, _ := e.log.RowsHash(ctx, "t1"); after != before {
		t.Fatal("refused writes changed the server's read model")
	}
	if got := ids(t, bob, "todos"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("bob's todos after the rollback: %v", got)
	}
	if d, err := bob.Collection("todos").Get(ctx, "a1"); err != nil || string(d.Fields["title"]) != `"edited"` {
		t.Fatalf("bob's a1 after the rollback: %v, %v", d.Fields, err)
	}
	// His own row goes through.
	must(bob.Collection("todos").Put(ctx, "b3", map[string]any{"owner": "bob", "title": "mine"}))
	must(bob.Collection("todos").Put(ctx, "b3", map[string]any{"owner": "bob", "title": "still mine"}))
	syncCtx(t, bob)
	if rej, _ := bob.Rejections(ctx, 5, 0); len(rej) != 0 {
		t.Fatalf("bob's own row was refused: %+v", rej)
	}
	syncCtx(t, alice)
	if got := ids(t, alice, "todos"); !slices.Equal(got, []string{"a1", "b3"}) {
		t.Fatalf("alice's todos: %v", got)
	}
	want, _ := e.log.RowsHash(ctx, "t1")
	for _, c := range []*client.Client{alice, bob} {
		if h, _ := c.Hash(ctx); h != want {
			t.Fatal("a client differs from the server's read model")
		}
	}
}

// A PrivateRead collection shows each user only their own rows, in the
// bootstrap and in live changes; subscriptions with field filters get only
// the matching rows, and a row that comes to match later arrives whole.
func TestSubscriptions_Filters(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{Auth: userAuth{}, Rules: map[string]server.Rule{
		"notes": {Owner: "owner", PrivateRead: true},
	}})
	alice := userClient(t, e, "t1/alice", "", nil, nil)
	writer := userClient(t, e, "t1/writer", "", nil, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(alice.Collection("notes").Put(ctx, "n-alice", map[string]any{"owner": "alice", "text": "secret"}))
	for i := range 6 {
		must(writer.Collection("todos").Put(ctx, fmt.Sprint("t", i), map[string]any{"list": []string{"home", "work"}[i%2], "title": fmt.Sprint("task ", i)}))
	}
	must(writer.Collection("notes").Put(ctx, "n-writer", map[string]any{"owner": "writer", "text": "the writer's"}))
	syncCtx(t, alice)
	syncCtx(t, writer)

	// bob bootstraps: no one else's notes; only the home todos.
	bob := userClient(t, e, "t1/bob", "", []string{"todos", "notes"}, map[string]map[string]any{"todos": {"list": "home"}})
	syncCtx(t, bob)
	if got := ids(t, bob, "todos"); !slices.Equal(got, []string{"t0", "t2", "t4"}) {
		t.Fatalf("bob's todos after the bootstrap: %v", got)
	}
	if got := ids(t, bob, "notes"); len(got) != 0 {
		t.Fatalf("bob received others' private notes: %v", got)
	}
	// Live: a new home todo and a work todo moved home arrive whole; a new
	// work todo and alice's new note do not.
	must(writer.Collection("todos").Put(ctx, "t6", map[string]any{"list": "home", "title": "task 6"}))
	must(writer.Collection("todos").Put(ctx, "t7", map[string]any{"list": "work", "title": "task 7"}))
	must(writer.Collection("todos").Patch(ctx, "t1", map[string]any{"list": "home"}))
	must(alice.Collection("notes").Put(ctx, "n-alice2", map[string]any{"owner": "alice", "text": "more"}))
	must(bob.Collection("notes").Put(ctx, "n-bob", map[string]any{"owner": "bob", "text": "bob's"}))
	syncCtx(t, writer)
	syncCtx(t, alice)
	syncCtx(t, bob)
	if got := ids(t, bob, "todos"); !slices.Equal(got, []string{"t0", "t1", "t2", "t4", "t6"}) {
		t.Fatalf("bob's todos after live changes: %v", got)
	}
	if d, err := bob.Collection("todos").Get(ctx, "t1"); err != nil || string(d.Fields["title"]) != `"task 1"` {
		t.Fatalf("t1, moved into the filter, arrived as %v, %v; want it whole", d.Fields, err)
	}
	if got := ids(t, bob, "notes"); !slices.Equal(got, []string{"n-bob"}) {
		t.Fatalf("bob's notes: %v", got)
	}
	if got := ids(t, alice, "notes"); !slices.Equal(got, []string{"n-alice", "n-alice2"}) {
		t.Fatalf("alice's notes: %v", got)
	}
}

// Changing a subscription between runs fetches just the rows it adds (and
// nothing is fetched again when it does not change).
func TestSubscriptions_ChangeFetchesTheDifference(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{Auth: userAuth{}})
	writer := userClient(t, e, "t1/writer", "", nil, nil)
	for i := range 30 {
		if err := writer.Collection("todos").Put(ctx, fmt.Sprintf("t%02d", i), map[string]any{"list": []string{"home", "work", "shop"}[i%3]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Collection("notes").Put(ctx, "n1", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, writer)
	dir := t.TempDir()
	open := func(subs []string, where map[string]map[string]any) *client.Client {
		t.Helper()
		c := userClient(t, e, "t1/reader", dir, subs, where)
		syncCtx(t, c)
		return c
	}
	bootRows := func(c *client.Client) uint64 { return c.Status().Bootstrap.Rows }

	c := open([]string{"todos"}, map[string]map[string]any{"todos": {"list": "home"}})
	if got := ids(t, c, "todos"); len(got) != 10 || bootRows(c) != 10 {
		t.Fatalf("home: %d todos, %d bootstrap rows; want 10, 10", len(got), bootRows(c))
	}
	c.Close()
	// Widen: home → work. Just the 10 work rows come (home stays local).
	c = open([]string{"todos"}, map[string]map[string]any{"todos": {"list": "work"}})
	if got := ids(t, c, "todos"); len(got) != 20 || bootRows(c) != 10 {
		t.Fatalf("after switching to work: %d todos, %d rows sent; want 20, 10", len(got), bootRows(c))
	}
	c.Close()
	// Unchanged: nothing is sent again.
	c = open([]string{"todos"}, map[string]map[string]any{"todos": {"list": "work"}})
	if bootRows(c) != 0 {
		t.Fatalf("same subscription: %d rows sent again", bootRows(c))
	}
	c.Close()
	// Drop the filter and add notes: what the work subscription left out
	// comes, the home and shop rows and the note (20 + 1); the 10 work
	// rows are not sent again. (The replica still had the home rows: the
	// difference is between subscriptions, not with what lingers.)
	c = open([]string{"todos", "notes"}, nil)
	if got := ids(t, c, "todos"); len(got) != 30 || bootRows(c) != 21 {
		t.Fatalf("all todos and notes: %d todos, %d rows sent; want 30, 21", len(got), bootRows(c))
	}
	if got := ids(t, c, "notes"); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("notes: %v", got)
	}
	// The replica now equals the server's read model.
	want, _ := e.log.RowsHash(ctx, "t1")
	if h, _ := c.Hash(ctx); h != want {
		t.Fatal("after the resubscriptions the replica differs from the server")
	}
}

// No subscription reaches another tenant: the tenant is the token's. Two
// tenants use the same collection and row IDs; each sees only its own,
// whatever it subscribes to, and a write to a row ID the other tenant
// uses creates its own row and leaves the other's as it was.
func TestTenants_SameRowIDsNeverCross(t *testing.T) {
	ctx := context.Background()
	e := startServerWith(t, server.Config{Auth: userAuth{}})
	a := userClient(t, e, "acme/u", "", nil, nil)
	if err := a.Collection("todos").Put(ctx, "shared-id", map[string]any{"title": "acme's"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, a)
	acme, _ := e.log.RowsHash(ctx, "acme")
	b := userClient(t, e, "globex/u", "", []string{"todos"}, map[string]map[string]any{"todos": {"title": "acme's"}})
	syncCtx(t, b)
	if got := ids(t, b, "todos"); len(got) != 0 {
		t.Fatalf("globex received %v", got)
	}
	if err := b.Collection("todos").Put(ctx, "shared-id", map[string]any{"title": "acme's"}); err != nil {
		t.Fatal(err)
	}
	syncCtx(t, b)
	if h, _ := e.log.RowsHash(ctx, "acme"); h != acme {
		t.Fatal("a write of globex changed acme's rows")
	}
	syncCtx(t, a)
	if d, err := a.Collection("todos").Get(ctx, "shared-id"); err != nil || string(d.Fields["title"]) != `"acme's"` {
		t.Fatalf("acme's row: %v, %v", d.Fields, err)
	}
	if h, _ := a.Hash(ctx); h != acme {
		t.Fatal("acme's replica changed after globex's write")
	}
	// A bad filter value is refused with a code.
	_, err := client.Open(ctx, client.Config{Path: filepath.Join(t.TempDir(), "x.db"), Server: e.url, Token: "acme/u",
		Subscriptions: []string{"todos"}, Where: map[string]map[string]any{"notes": {"x": 1}}})
	if err == nil {
		t.Fatal("Where on a collection not subscribed was accepted")
	}
}

// A subscription whose filter value is not JSON is refused with a code
// before anything is sent or appended.
func TestSubscriptions_BadFilterRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := startServer(t)
	codec, _ := usync.NewCodec(usync.CodecConfig{})
	ws, _, err := websocket.Dial(ctx, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	p := &rawPeer{ws: ws, codec: codec}
	p.send(t, ctx, &usync.Hello{Versions: usync.Versions, Site: crdt.SiteID{9}, Token: e.auth.Token, Credits: 4,
		Subscriptions: []usync.Subscription{{Collection: "todos", Where: []usync.Filter{{Field: "list", Value: []byte(`{not json`)}}}}})
	m, ok := p.recv(t, ctx).(*usync.ErrorMessage)
	if !ok || m.Code != usync.CodeBadMessage {
		t.Fatalf("got %#v, want an Error with CodeBadMessage", m)
	}
	if head, _ := e.log.Head(ctx, "dev"); head != 0 {
		t.Fatalf("head %d after a refused session", head)
	}
}
