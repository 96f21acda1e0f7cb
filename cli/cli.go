package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/unosync/uno/bench"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	"golang.org/x/term"
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
	root.AddCommand(serveCmd(o), configCmd(), migrateCmd(), tenantCmd(), projectionCmd(o), compactCmd(o), jobsCmd(), benchCmd(), versionCmd())
	root.AddCommand(healthCmd())
	return root
}

func benchCmd() *cobra.Command {
	var opts bench.Options
	var out string
	var sync, docs bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run every benchmark beside its ceiling and write a report",
		Long: `Runs uno's workloads — the local engine, real clients syncing through a
server (2 and 50 clients, paced latency to 1 and 49 receivers, in both
durability modes, and the 1-receiver latency traced stage by stage), the server under load generators, the query API and
the doc fields — each beside its ceiling (the disk's fsync floor, back
to back and paced, plain SQLite, a durable relay of the paced writes,
bare and between plain SQLite replicas, a
raw WebSocket echo and broadcast, automerge-go) in the same run, and writes OUT/RESULTS.md (tables, targets met or not, the machine,
charts in OUT/charts/*.svg) and OUT/results.json (every round's figures).

Groups and workloads for --only: local, clients, ceilings, sync, query,
docs, or a workload's name from results.json (the ceilings a workload is
compared with always run too). The sync workloads start uno serve, so
they need the Go toolchain; the query API runs over Postgres too when
UNO_PG_DSN names a server; the doc workloads read the editing trace from
$UNO_BENCH_DATA or ../shared/data. --quick runs everything once at tiny sizes,
to check that it works.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			opts.Log = stderr
			p := newProgress(stderr)
			opts.Progress = p.step
			r, runErr := bench.Run(opts)
			p.finish()
			if r == nil {
				return runErr
			}
			r.Command = commandLine()
			if err := r.Write(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s and %s\n\n", filepath.Join(out, "RESULTS.md"), filepath.Join(out, "results.json"), filepath.Join(out, "charts"))
			for _, t := range r.Targets {
				fmt.Fprintln(cmd.OutOrStdout(), targetLine(t))
			}
			return runErr
		},
	}
	cmd.Flags().DurationVar(&opts.BenchTime, "benchtime", 0, "time per round of each timed benchmark (default 2s; 50ms with --quick)")
	cmd.Flags().IntVar(&opts.Rounds, "rounds", 5, "rounds of each workload, alternating with its ceilings; medians and min–max are shown (1 with --quick unless set)")
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "one round at tiny sizes, to check that everything works (figures mean nothing; skips the doc trace)")
	cmd.Flags().StringSliceVar(&opts.Only, "only", nil, "run only these groups or workloads (comma-separated): local, clients, ceilings, sync, postgres, query, browser, docs, or a workload name")
	cmd.Flags().StringVar(&out, "out", "bench", "directory for RESULTS.md, results.json and charts/")
	cmd.Flags().BoolVar(&sync, "sync", false, "")
	cmd.Flags().BoolVar(&docs, "docs", false, "")
	cmd.Flags().MarkDeprecated("sync", "every workload runs by default now; use --only to choose")
	cmd.Flags().MarkDeprecated("docs", "every workload runs by default now; use --only to choose")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) {
		if opts.Quick && !cmd.Flags().Changed("rounds") {
			opts.Rounds = 1
		}
	}
	return cmd
}

// commandLine is how this process was started, as one shell line.
func commandLine() string {
	args := []string{filepath.Base(os.Args[0])}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// progress shows uno bench's steps: a bar on a terminal, else a line
// per step.
type progress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false), progressbar.OptionSetWidth(30))
	}
	return p
}

func (p *progress) step(s bench.Step) {
	desc := fmt.Sprintf("%s (round %d/%d)", s.Workload, s.Round, s.Rounds)
	if p.bar == nil {
		fmt.Fprintf(p.w, "[%d/%d] %s\n", s.Done+1, s.Total, desc)
		return
	}
	p.bar.ChangeMax(s.Total)
	p.bar.Describe(desc)
	p.bar.Set(s.Done)
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// targetLine is uno bench's closing line for one target: met or not, the
// figure, the target and, for one out of reach, the ceiling that stops it.
func targetLine(t bench.Row) string {
	met := "not met"
	if t.Pass {
		met = "met"
	}
	bound := ""
	if !t.Pass && t.Bound != "" {
		bound = "; out of reach here: " + t.Bound
	}
	return fmt.Sprintf("%-7s  %s: %s (target %s%s)", met, t.Workload, t.Uno, t.Target, bound)
}
