package sync

import (
	"errors"
	"fmt"

	"github.com/unosync/uno/crdt"
)

// Code is a numeric error code from the one table shared by clients and
// servers. Codes travel in Error and Reject messages and in WebSocket close
// reasons; match them with errors.Is against the Err variables, never by
// message text.
type Code uint16

// The code table. Values are part of the protocol: never renumber.
const (
	CodeBadMessage         Code = 1000 // a frame that does not decode
	CodeUnknownType        Code = 1001 // a message type this peer does not know
	CodeUnsupportedVersion Code = 1002 // no protocol version in common
	CodeTooLarge           Code = 1003 // a frame or message over the limits
	CodeBadCompression     Code = 1004 // a compressed payload that does not decompress within limits
	CodeUnexpected         Code = 1005 // a message not allowed in the session's state
	CodeUnauthorized       Code = 1100 // a missing or invalid token
	CodeTokenExpired       Code = 1101 // the token expired (also mid-connection)
	CodeForbidden          Code = 1102 // authenticated, but not allowed
	CodeGap                Code = 1200 // a transaction skips some of its site's earlier ones
	CodeMalformedTx        Code = 1201 // a transaction that no correct client makes
	CodeClockDrift         Code = 1202 // a timestamp too far in the future
	CodeInvalidTx          Code = 1203 // a transaction refused by the server's rules
	CodeWrongSite          Code = 1204 // a transaction from another site than the session's
	CodeQuotaExceeded      Code = 1205 // a transaction over the tenant's row or byte quota
	CodeRowTooLarge        Code = 1206 // a row whose merged state would exceed the largest row any message carries
	CodeResync             Code = 1300 // the cursor is older than the log: bootstrap from a snapshot
	CodeSlowConsumer       Code = 1301 // the client fell behind: reconnect and resume from its cursor
	CodeRateLimited        Code = 1302 // too many requests: back off
	CodeForked             Code = 1303 // the replica moved writes to a new site (its database went back): reconnect as it
	CodeUnavailable        Code = 1400 // the server cannot serve now: retry later
	CodeInternal           Code = 1401 // a server bug
	CodeShuttingDown       Code = 1402 // the server is shutting down: reconnect (to another node, or to this one once it is back)
)

var codeNames = map[Code]string{
	CodeBadMessage:         "bad message",
	CodeUnknownType:        "unknown message type",
	CodeUnsupportedVersion: "unsupported protocol version",
	CodeTooLarge:           "too large",
	CodeBadCompression:     "bad compression",
	CodeUnexpected:         "unexpected message",
	CodeUnauthorized:       "unauthorized",
	CodeTokenExpired:       "token expired",
	CodeForbidden:          "forbidden",
	CodeGap:                "gap in sequence",
	CodeMalformedTx:        "malformed transaction",
	CodeClockDrift:         "clock drift",
	CodeInvalidTx:          "invalid transaction",
	CodeWrongSite:          "wrong site",
	CodeQuotaExceeded:      "quota exceeded",
	CodeRowTooLarge:        "row too large",
	CodeResync:             "resync required",
	CodeSlowConsumer:       "slow consumer",
	CodeRateLimited:        "rate limited",
	CodeForked:             "forked",
	CodeUnavailable:        "unavailable",
	CodeInternal:           "internal error",
	CodeShuttingDown:       "shutting down",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Retryable reports whether a client should retry after this code (after
// backing off) rather than give up or surface it to the app.
func (c Code) Retryable() bool {
	switch c {
	case CodeSlowConsumer, CodeRateLimited, CodeUnavailable, CodeInternal, CodeResync, CodeShuttingDown, CodeForked:
		return true
	}
	return false
}

// Error is a protocol error with its code. It is what an Error message
// carries, and what the codec and the session state machines return.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("sync: %s (%d)", e.Code, e.Code)
	}
	return fmt.Sprintf("sync: %s (%d): %s", e.Code, e.Code, e.Message)
}

// Is matches another *Error with the same code, so errors.Is(err, ErrGap)
// holds for any gap error whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: its *Error's code, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// TxCode returns the code that refuses a transaction for err, an error
// from crdt's validation rules ([crdt.ValidateTx], [crdt.CheckRowSize]):
// CodeMalformedTx for a transaction no correct client makes (a bad name,
// row ID, value or op), CodeInvalidTx for one the declared schema does not
// allow, CodeRowTooLarge for one that would make a row too large. Any
// other error, nil included, gives CodeInternal.
func TxCode(err error) Code {
	switch {
	case err == nil:
		return CodeInternal
	case errors.Is(err, crdt.ErrRowTooLarge):
		return CodeRowTooLarge
	case errors.Is(err, crdt.ErrUndeclared):
		return CodeInvalidTx
	case errors.Is(err, crdt.ErrInvalidName), errors.Is(err, crdt.ErrInvalidID),
		errors.Is(err, crdt.ErrInvalidValue), errors.Is(err, crdt.ErrMalformedOp):
		return CodeMalformedTx
	}
	return CodeInternal
}

// Sentinels for errors.Is, one per code.
var (
	ErrBadMessage         = &Error{Code: CodeBadMessage}
	ErrUnknownType        = &Error{Code: CodeUnknownType}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrBadCompression     = &Error{Code: CodeBadCompression}
	ErrUnexpected         = &Error{Code: CodeUnexpected}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized}
	ErrTokenExpired       = &Error{Code: CodeTokenExpired}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrGap                = &Error{Code: CodeGap}
	ErrMalformedTx        = &Error{Code: CodeMalformedTx}
	ErrClockDrift         = &Error{Code: CodeClockDrift}
	ErrInvalidTx          = &Error{Code: CodeInvalidTx}
	ErrWrongSite          = &Error{Code: CodeWrongSite}
	ErrQuotaExceeded      = &Error{Code: CodeQuotaExceeded}
	ErrRowTooLarge        = &Error{Code: CodeRowTooLarge}
	ErrResync             = &Error{Code: CodeResync}
	ErrSlowConsumer       = &Error{Code: CodeSlowConsumer}
	ErrRateLimited        = &Error{Code: CodeRateLimited}
	ErrForked             = &Error{Code: CodeForked}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
	ErrInternal           = &Error{Code: CodeInternal}
	ErrShuttingDown       = &Error{Code: CodeShuttingDown}
)

func asError(err error, target **Error) bool { return errors.As(err, target) }
