package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoTokenSource reports a Reauthenticate without Config.TokenSource.
var ErrNoTokenSource = errors.New("client: no token source (set Config.TokenSource)")

// Reauthenticate renews the live connection's token now, without
// reconnecting: it asks Config.TokenSource for a token and sends it to
// the server, and returns once the server accepted it. The client does
// this by itself before each token expires; call it when the app knows
// the token changed (new claims, say). Without a live connection it waits
// for the next one (with ManualSync, a Sync's). A token the server refuses
// ends the connection, and Reauthenticate returns the server's error: a
// token of another tenant fails with usync.ErrForbidden, as the tenant
// never changes on a connection.
func (c *Client) Reauthenticate(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	switch {
	case c.cfg.Server == "":
		return ErrNoServer
	case c.cfg.TokenSource == nil:
		return ErrNoTokenSource
	}
	r := make(chan error, 1)
	select {
	case c.reauths <- r:
	case <-c.syncDone: // nil with ManualSync
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// renewAfter is how long after learning that its token has left of its
// lifetime the client renews it: at 80% of the remaining lifetime or 30 s
// before expiry, whichever comes first, but never before half of it has
// passed (so that short tokens are not renewed in a loop).
func renewAfter(left time.Duration) time.Duration {
	return max(0, min(left*8/10, max(left-30*time.Second, left/2)))
}

// minRenewLeft is the least lifetime worth renewing a token for: closer
// to its expiry, the connection ends with it and the next one starts with
// a fresh token.
const minRenewLeft = 20 * time.Millisecond

// renewal is a connection's in-band token renewal (see
// usync.ClientSession.Reauthenticate).
type renewal struct {
	skew    time.Duration // the server's clock minus ours, from Welcome
	welcome bool          // Welcome arrived: later Authenticated are AuthOKs
	expires time.Time     // when the token expires, on our clock (zero: never)
	timer   *time.Timer   // the next renewal (nil: none due)

	fetch   chan tokenResult // the TokenSource call running (nil: none)
	asked   []chan error     // Reauthenticate calls waiting for the running call's token
	queued  []chan error     // ... that came during the running call: they wait for the next one
	pending [][]chan error   // ... waiting for the AuthOK of each Auth sent, in order
}

type tokenResult struct {
	token string
	err   error
}

// due is the timer's channel: nil while no renewal is due.
func (r *renewal) due() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

// authenticated takes the expiry of the token the server just accepted
// (at Welcome or AuthOK), answers the Reauthenticate calls waiting for
// that AuthOK, and schedules the next renewal.
func (d *syncDriver) authenticated() {
	r := &d.renew
	now := d.c.cfg.Now()
	if !r.welcome {
		r.welcome = true
		if w := d.sess.Welcome(); w != nil {
			r.skew = w.ServerTime.Time().Sub(now)
		}
	} else if len(r.pending) > 0 {
		for _, w := range r.pending[0] {
			w <- nil
		}
		r.pending = r.pending[1:]
	}
	r.expires = time.Time{}
	if ms := d.sess.Expires(); ms != 0 {
		r.expires = time.UnixMilli(ms).Add(-r.skew)
	}
	d.scheduleRenewal()
}

// scheduleRenewal sets the timer for the next renewal, if the token
// expires and there is a TokenSource to renew it from.
func (d *syncDriver) scheduleRenewal() {
	r := &d.renew
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if d.c.cfg.TokenSource == nil || r.expires.IsZero() {
		return
	}
	left := r.expires.Sub(d.c.cfg.Now())
	if left < minRenewLeft {
		return
	}
	r.timer = time.NewTimer(renewAfter(left))
}

// fetchToken asks the TokenSource for a token in the background, unless
// a call is running; the result comes on renew.fetch.
func (d *syncDriver) fetchToken(ctx context.Context) {
	r := &d.renew
	if r.fetch != nil {
		return
	}
	ch := make(chan tokenResult, 1)
	r.fetch = ch
	r.asked, r.queued = append(r.asked, r.queued...), nil
	source := d.c.cfg.TokenSource
	go func() {
		token, err := source(ctx)
		ch <- tokenResult{token, err}
	}()
}

// askedToRenew takes a Reauthenticate call: it waits for a token fetched
// after it was made.
func (d *syncDriver) askedToRenew(ctx context.Context, w chan error) {
	if d.renew.fetch != nil {
		d.renew.queued = append(d.renew.queued, w)
		return
	}
	d.renew.asked = append(d.renew.asked, w)
	d.fetchToken(ctx)
}

// gotToken sends a fetched token to the server (the session answers AuthOK
// or closes), or, if the TokenSource failed, tries again later: halfway
// to the expiry, until the token expires and the connection with it.
func (d *syncDriver) gotToken(ctx context.Context, res tokenResult) {
	r := &d.renew
	r.fetch = nil
	asked := r.asked
	r.asked = nil
	switch {
	case res.err != nil:
		err := fmt.Errorf("sync: get a token: %w", res.err)
		d.c.cfg.Logger.Warn("renew token", "err", err)
		for _, w := range asked {
			w <- err
		}
		d.scheduleRenewal()
	case !d.sess.Open():
		for _, w := range asked {
			w <- errors.New("sync: connection closed before the token was renewed")
		}
	default:
		d.sess.Reauthenticate(res.token)
		r.pending = append(r.pending, asked)
	}
	if len(r.queued) > 0 && d.sess.Open() {
		d.fetchToken(ctx)
	}
}

// endRenewal stops the timer and answers every Reauthenticate call still
// waiting with the error that ended the connection.
func (d *syncDriver) endRenewal(err error) {
	r := &d.renew
	if r.timer != nil {
		r.timer.Stop()
	}
	if err == nil {
		err = errors.New("sync: connection closed before the token was renewed")
	}
	for _, ws := range append(append(r.pending, r.asked), r.queued) {
		for _, w := range ws {
			w <- err
		}
	}
}
