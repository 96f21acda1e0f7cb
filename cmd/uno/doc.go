// Command uno is uno's one binary. Today it measures the local engine
// (uno bench); the sync server (uno serve) comes next.
package main
