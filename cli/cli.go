package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/bench"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
)

// Options are what an application adds to the uno command.
type Options struct {
	// Projections are the application's projections on the Postgres
	// log: uno serve --postgres folds them, uno projection setup
	// --postgres creates their tables and uno projection rebuild
	// --postgres replays them.
	Projections []pglog.Projection
	// SQLiteProjections are the application's projections on the
	// embedded SQLite log (the default of uno serve): uno serve folds
	// them (creating their tables if missing), uno projection
	// setup|list|rebuild --data DIR administers them. A projection with
	// a fold for each log appears in both lists under one name; one in
	// one list only makes uno serve refuse the other log.
	SQLiteProjections []sqlitelog.Projection
}

// checkProjections refuses to serve a projection on a log it has no fold
// for, naming the flag that selects the log it has one for.
func (o Options) checkProjections(postgres bool) error {
	pg, lite := map[string]bool{}, map[string]bool{}
	for _, p := range o.Projections {
		pg[p.Name] = true
	}
	for _, p := range o.SQLiteProjections {
		lite[p.Name] = true
	}
	if postgres {
		for _, p := range o.SQLiteProjections {
			if !pg[p.Name] {
				return fmt.Errorf("projection %s has a fold for the SQLite log only (cli.Options.SQLiteProjections): serve it on the embedded log (drop --postgres; --data DIR), or give it a Postgres fold in cli.Options.Projections", p.Name)
			}
		}
		return nil
	}
	for _, p := range o.Projections {
		if !lite[p.Name] {
			return fmt.Errorf("projection %s has a fold for the Postgres log only (cli.Options.Projections): add --postgres DSN, or give it a SQLite fold in cli.Options.SQLiteProjections", p.Name)
		}
	}
	return nil
}

// Run runs the uno command with args (without the program name).
func Run(ctx context.Context, args []string, o Options) error {
	root := rootCmd(o)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func run(ctx context.Context, args []string) error { return Run(ctx, args, Options{}) }

func rootCmd(o Options) *cobra.Command {
	root := &cobra.Command{
		Use:           "uno",
		Short:         "uno is an embeddable offline-first sync engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(o), migrateCmd(), tenantCmd(), projectionCmd(o), compactCmd(o), benchCmd(), versionCmd())
	return root
}

func benchCmd() *cobra.Command {
	var opts bench.Options
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the local benchmarks beside plain SQLite and print a table",
		Long: `Runs uno's local benchmarks (writes, reads, queries, watches), each
beside its ceiling — plain SQLite through the same driver doing the same
writes — in the same run, and prints a Markdown table with the ratios and
the targets. Results are kept in bench/RESULTS.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Progress = cmd.ErrOrStderr()
			rows, err := bench.Run(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nmachine: %s\n\n", bench.Machine())
			bench.Markdown(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	cmd.Flags().DurationVar(&opts.BenchTime, "benchtime", 0, "time per benchmark (default 2s)")
	cmd.Flags().IntVar(&opts.Rounds, "rounds", 0, "rounds of each benchmark beside its ceiling; medians are shown (default 3)")
	cmd.Flags().BoolVar(&opts.Sync, "sync", false, "also run the sync and query API benchmarks (starts uno serve; needs the Go toolchain; the query API over Postgres too when UNO_PG_DSN is set)")
	cmd.Flags().BoolVar(&opts.Docs, "docs", false, "also run the doc field benchmarks: the automerge-paper editing trace locally beside automerge-go, and end to end (reads the trace from $UNO_DATA or ../shared/data)")
	return cmd
}
