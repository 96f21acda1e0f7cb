package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "uno:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	root := rootCmd()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "uno",
		Short:         "uno is an embeddable offline-first sync engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), migrateCmd(), tenantCmd(), benchCmd())
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
	return cmd
}
