package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2025-06-01T12:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: modulePath, Version: "v1.2.3"}},
			"uno v1.2.3\ngo go1.26.1" + platform},
		{"source tree", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: modulePath, Version: "(devel)"}, Settings: vcs},
			"uno (devel)\nrevision 0123456789abcdef0123456789abcdef01234567 (modified)\ntime 2025-06-01T12:00:00Z\ngo go1.26.1" + platform},
		{"application", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "example.com/app", Version: "v0.9.0"},
			Deps: []*debug.Module{{Path: "github.com/spf13/cobra", Version: "v1.9.1"}, {Path: modulePath, Version: "v1.2.3"}}},
			"uno v1.2.3\nbuilt into example.com/app v0.9.0\ngo go1.26.1" + platform},
		{"application with uno replaced", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.3", Replace: &debug.Module{Path: "../uno"}}}},
			"uno v1.2.3 => ../uno\nbuilt into example.com/app (devel)\ngo go1.26.1" + platform},
		{"no build information", nil, "uno (no build information)\ngo " + runtime.Version() + platform},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionText(tt.bi); got != tt.want {
				t.Errorf("versionText =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out strings.Builder
	root := rootCmd(Options{})
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "uno ") || !strings.Contains(out.String(), "go "+runtime.Version()+" ") {
		t.Fatalf("uno version printed %q", out.String())
	}
}
