//go:build !cgo && !js

package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/unosync/uno/client"
	"github.com/unosync/uno/crdt"
)

// A build without the Automerge library stores, merges and syncs doc
// fields, and refuses to edit them with ErrDocUnavailable.
func TestDoc_WithoutAutomerge(t *testing.T) {
	ctx := context.Background()
	// An empty change by site 0a00…00, as automerge-go wrote it.
	change, _ := hex.DecodeString("856f4a83b8e3845c011800100a000000000000000000000000000000010100000000")
	site := crdt.SiteID{0: 0x0a}
	tx := &crdt.Tx{Site: site, Seq: 1, Time: crdt.MakeTimestamp(1, 0), Ops: []crdt.Op{
		{Type: crdt.OpChange, Kind: crdt.KindDoc, Collection: "notes", Row: "n1", Field: "body", CL: 1, Value: change}}}
	var want crdt.State
	if _, err := want.Apply(tx); err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := open(t, b, client.Config{Schema: notesSchema})
			must(t, c.Merge(ctx, []*crdt.Tx{tx, tx}))
			if hash(t, c) != want.Hash() {
				t.Error("the merged doc field's hash differs from crdt.State's")
			}
			if _, ok := get(t, c, "notes", "n1").Fields["body"]; ok {
				t.Error("a doc field shows a value in a build that cannot render it")
			}
			err := c.Collection("notes").Splice(ctx, "n1", "body", client.Path{"text"}, 0, 0, "x")
			if !errors.Is(err, client.ErrDocUnavailable) {
				t.Errorf("Splice = %v, want ErrDocUnavailable", err)
			}
		})
	}
}
