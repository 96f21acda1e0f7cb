// Command uno is uno's one binary: uno serve runs the sync server (with no
// flags: 127.0.0.1:8080, data in ./uno-data, a printed development token),
// uno bench measures the engine.
package main
