// Package logtrace holds the tracing both event logs (sqlitelog, pglog)
// share: the spans of inline and async projections, and the traceparent
// each append keeps with its entries so that an async projection's fold,
// a new root, can link to the appends it folds. Everything here costs one
// IsRecording check when tracing is off.
package logtrace
