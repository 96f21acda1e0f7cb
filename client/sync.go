package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/unosync/uno/crdt"
	usync "github.com/unosync/uno/sync"
)

// ErrNoServer reports a sync without Config.Server.
var ErrNoServer = errors.New("client: no server configured (set Config.Server)")

// Sync runs one sync with the server: it connects, pushes every pending
// transaction, applies every change the server has, waits for the
// server's acknowledgements and disconnects. It returns once the replica
// holds everything the server held when the sync began and the server
// holds everything the replica had. Errors from the server match the
// usync Err variables (errors.Is).
func (c *Client) Sync(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.cfg.Server == "" {
		return ErrNoServer
	}
	codec, err := usync.NewCodec(usync.CodecConfig{})
	if err != nil {
		return err
	}
	defer codec.Close()
	ws, _, err := websocket.Dial(ctx, c.cfg.Server, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return fmt.Errorf("sync: connect %s: %w", c.cfg.Server, err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(int64(codec.Limits().MaxFrameBytes))
	cursor, err := c.store.Cursor(ctx)
	if err != nil {
		return err
	}
	sess := usync.NewClientSession(usync.ClientConfig{Site: c.store.Site(), Token: c.cfg.Token, SchemaVersion: c.schemaVersion()}, cursor)
	d := &syncDriver{c: c, ws: ws, codec: codec, sess: sess}
	sess.Start()
	if err := d.run(ctx); err != nil {
		return err
	}
	ws.Close(websocket.StatusNormalClosure, "")
	return nil
}

func (c *Client) schemaVersion() int {
	if c.cfg.Schema == nil {
		return 0
	}
	return c.cfg.Schema.Version
}

// syncDriver does a ClientSession's IO over one WebSocket.
type syncDriver struct {
	c     *Client
	ws    *websocket.Conn
	codec *usync.Codec
	sess  *usync.ClientSession
}

func (d *syncDriver) run(ctx context.Context) error {
	for {
		if err := d.ready(ctx); err != nil {
			return err
		}
		if err := d.push(ctx); err != nil {
			return err
		}
		if err := d.ready(ctx); err != nil {
			return err
		}
		done, err := d.done(ctx)
		if err != nil || done {
			return err
		}
		typ, b, err := d.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("sync: read: %w", err)
		}
		if typ != websocket.MessageBinary {
			return usync.Errorf(usync.CodeBadMessage, "text frame from the server")
		}
		m, err := d.codec.Decode(b)
		if err != nil {
			var se *usync.Error
			errors.As(err, &se)
			d.sess.Fail(se)
			continue
		}
		d.sess.Step(m)
	}
}

// done reports whether the one-shot sync is complete: welcomed, nothing
// pending, caught up with the head the server announced.
func (d *syncDriver) done(ctx context.Context) (bool, error) {
	w := d.sess.Welcome()
	if w == nil || !d.sess.Open() {
		return false, nil
	}
	n, err := d.c.store.Pending(ctx)
	if err != nil {
		return false, err
	}
	return n == 0 && d.sess.Cursor() >= w.Head, nil
}

// push hands the session the next outbox entries it can take.
func (d *syncDriver) push(ctx context.Context) error {
	for {
		after, max, ok := d.sess.WantPush()
		if !ok {
			return nil
		}
		txs, err := d.c.store.Outbox(ctx, after, max)
		if err != nil || len(txs) == 0 {
			return err
		}
		flat := make([]crdt.Tx, len(txs))
		for i, tx := range txs {
			flat[i] = *tx
		}
		if err := d.sess.Push(flat); err != nil {
			return err
		}
	}
}

// ready does the session's IO in the order ClientReady documents.
func (d *syncDriver) ready(ctx context.Context) error {
	for d.sess.HasReady() {
		rd := d.sess.Ready()
		if rd.Acked > 0 {
			if err := d.c.store.Ack(ctx, rd.Acked); err != nil {
				return err
			}
		}
		if rd.Apply != nil {
			if err := d.apply(ctx, rd.Apply); err != nil {
				return err
			}
			d.sess.Applied()
		}
		for _, m := range rd.Send {
			b, err := d.codec.Encode(m)
			if err != nil {
				return err
			}
			if err := d.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
				return fmt.Errorf("sync: write: %w", err)
			}
		}
		d.sess.Advance(rd)
		if rd.Close != nil {
			if rd.Close.Code == 0 {
				return nil
			}
			return rd.Close
		}
	}
	return nil
}

// apply applies a batch of changes and moves the cursor in one local transaction.
func (d *syncDriver) apply(ctx context.Context, m usync.Message) error {
	ch, ok := m.(*usync.Changes)
	if !ok {
		return usync.Errorf(usync.CodeUnexpected, "snapshots are not supported by this client yet")
	}
	txs := make([]*crdt.Tx, len(ch.Changes))
	for i := range ch.Changes {
		txs[i] = &ch.Changes[i].Tx
	}
	commit, err := d.c.store.ApplyAt(ctx, txs, ch.To)
	if err != nil {
		return err
	}
	d.c.notify(commit.Changed)
	return nil
}
