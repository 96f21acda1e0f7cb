package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server/pglog"
)

func projectionCmd(app Options) *cobra.Command {
	var dsn string
	find := func(name string) (pglog.Projection, error) {
		all := append([]pglog.Projection{pglog.RowsProjection()}, app.Projections...)
		var names []string
		for _, p := range all {
			if p.Name == name {
				return p, nil
			}
			names = append(names, p.Name)
		}
		return pglog.Projection{}, fmt.Errorf("no projection %q in this binary (it has: %s)", name, strings.Join(names, ", "))
	}
	cmd := &cobra.Command{
		Use:   "projection setup|list|rebuild NAME",
		Short: "Administer the Postgres read models (run as the tables' owner)",
		Long: `setup creates the tables of this binary's projections that do not exist
yet (under row-level security, with the grants uno_rows has). list names
them. rebuild NAME replays the whole log into fresh copies of a
projection's tables and swaps them in atomically (appends wait only for
the swap): to fix a fold or change a projection's tables. "rows" is the
built-in rows read model. Projections are Go code: build a binary with
yours through package cli.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dsn == "" {
				return errors.New("--postgres DSN is required")
			}
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			switch args[0] {
			case "setup":
				if err := pglog.SetupProjections(ctx, dsn, app.Projections...); err != nil {
					return err
				}
				fmt.Fprintf(out, "%d projection(s) set up\n", len(app.Projections))
			case "list":
				fmt.Fprintln(out, "rows\tinline\tbuilt in")
				for _, p := range app.Projections {
					mode := "inline"
					if p.Async {
						mode = "async"
					}
					fmt.Fprintf(out, "%s\t%s\n", p.Name, mode)
				}
			case "rebuild":
				if len(args) != 2 {
					return errors.New("projection rebuild needs the projection's NAME")
				}
				p, err := find(args[1])
				if err != nil {
					return err
				}
				start, last := time.Now(), time.Time{}
				err = pglog.RebuildProjection(ctx, dsn, p, func(tenant string, seq, head uint64) {
					if time.Since(last) > time.Second || seq == head {
						fmt.Fprintf(cmd.ErrOrStderr(), "rebuild %s: tenant %s: %d/%d\n", p.Name, tenant, seq, head)
						last = time.Now()
					}
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "projection %s rebuilt and swapped in (%s)\n", p.Name, time.Since(start).Round(time.Millisecond))
			default:
				return fmt.Errorf("unknown projection command %q: want setup, list or rebuild", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "postgres", "", "the database's DSN, as the tables' owner")
	return cmd
}
