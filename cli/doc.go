// Package cli is the uno command (serve, migrate, tenant, projection,
// bench, version) as a library, so that an application can build its own uno
// binary with its projections compiled in:
//
//	func main() {
//		err := cli.Run(ctx, os.Args[1:], cli.Options{Projections: []server.Projection{stats.Projection(false)}})
//		...
//	}
//
// cmd/uno is that binary with no additions.
package cli
