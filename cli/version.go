package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// modulePath is uno's module.
const modulePath = "github.com/unosync/uno"

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print uno's version, the revision it was built from and the Go version",
		Long: `Prints uno's module version ("(devel)" when built from a source tree),
the application's module when an application built its own uno binary
(package cli), the version control revision and its time (with
"modified" when the tree had uncommitted changes) when the build
recorded them, and the Go version and platform.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, _ := debug.ReadBuildInfo()
			fmt.Fprint(cmd.OutOrStdout(), versionText(bi))
			return nil
		},
	}
}

// versionText describes a build, one fact a line; bi may be nil (a
// binary built without module support).
func versionText(bi *debug.BuildInfo) string {
	var b strings.Builder
	goVersion := runtime.Version()
	if bi == nil {
		fmt.Fprintf(&b, "uno (no build information)\n")
	} else {
		goVersion = bi.GoVersion
		if bi.Main.Path == modulePath || bi.Main.Path == "" {
			fmt.Fprintf(&b, "uno %s\n", orDevel(bi.Main.Version))
		} else {
			uno := "(not a dependency)"
			for _, d := range bi.Deps {
				if d.Path == modulePath {
					uno = orDevel(d.Version)
					if d.Replace != nil {
						uno += " => " + d.Replace.Path + " " + d.Replace.Version
					}
				}
			}
			fmt.Fprintf(&b, "uno %s\nbuilt into %s %s\n", strings.TrimSpace(uno), bi.Main.Path, orDevel(bi.Main.Version))
		}
		set := map[string]string{}
		for _, s := range bi.Settings {
			set[s.Key] = s.Value
		}
		if rev := set["vcs.revision"]; rev != "" {
			if set["vcs.modified"] == "true" {
				rev += " (modified)"
			}
			fmt.Fprintf(&b, "revision %s\n", rev)
		}
		if t := set["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "time %s\n", t)
		}
	}
	fmt.Fprintf(&b, "go %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func orDevel(v string) string {
	if v == "" {
		return "(devel)"
	}
	return v
}
