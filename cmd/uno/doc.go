// Command uno is uno's one binary: uno serve runs the sync server (with no
// flags: 127.0.0.1:8080, data in ./uno-data, a printed development token),
// uno migrate and uno tenant administer Postgres, uno projection rebuilds
// read models, uno bench measures the engine, uno version says what was
// built from which revision. It is package cli with no
// application projections; see there to build your own.
package main
