package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Report is what Run measured, laid out for RESULTS.md and results.json.
type Report struct {
	// Command is the command line that ran it; the caller sets it.
	Command   string      `json:"command"`
	Date      time.Time   `json:"date"`
	Machine   Machine     `json:"machine"`
	Rounds    int         `json:"rounds"`
	BenchTime string      `json:"benchtime"`
	Quick     bool        `json:"quick"`
	Only      []string    `json:"only,omitempty"`
	Workloads []*Measured `json:"workloads"`
	// Targets are the table rows that have a target.
	Targets []Row `json:"targets"`

	sections []section
	byID     map[string]*Measured
}

// Machine describes where the benchmarks ran.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	OS     string `json:"os"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	// Modules maps the module paths that shape the figures (the
	// SQLite driver, the WebSocket library, ...) to their versions.
	Modules  map[string]string `json:"modules"`
	Revision string            `json:"revision,omitempty"` // uno's VCS revision, if built with it
	TempDir  string            `json:"tempdir"`            // where the databases are
}

// Row is one line of a results table.
type Row struct {
	ID       string `json:"workload"`
	Workload string `json:"title"`
	Uno      string `json:"uno"`               // uno's figure: median (min–max)
	Ceiling  string `json:"ceiling,omitempty"` // the ceiling's figure, if any
	Ratio    string `json:"ratio,omitempty"`
	Target   string `json:"target,omitempty"`
	Pass     bool   `json:"pass"`
	// Bound, for a target not met, names a ceiling of the same run that
	// is past the target itself: what stops it on this machine.
	Bound   string `json:"bound,omitempty"`
	Checked bool   `json:"-"` // the row has a target
}

// met is the row's verdict: yes, no, or no and the ceiling that stops it.
func (r Row) met() string {
	if !r.Pass && r.Bound != "" {
		return "no (out of reach here: " + r.Bound + ")"
	}
	return yesNo(r.Pass)
}

// section is one part of RESULTS.md: prose, a table, more prose.
type section struct {
	title         string
	before, after string
	rows          []Row
}

// machine reads the machine's description.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Modules: map[string]string{}, TempDir: os.TempDir()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`) + " (" + m.OS + ")"
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "modernc.org/sqlite", "modernc.org/libc", "github.com/coder/websocket", "github.com/klauspost/compress",
				"github.com/automerge/automerge-go", "github.com/jackc/pgx/v5", "github.com/go-analyze/charts":
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path + " " + d.Replace.Version
				}
				m.Modules[d.Path] = v
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m.Revision = s.Value
			}
		}
	}
	return m
}

// Write writes dir/RESULTS.md, dir/results.json and dir/charts/*.svg.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "charts"), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	charts, err := r.charts()
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, c := range charts {
		if err := os.WriteFile(filepath.Join(dir, "charts", c.file), c.svg, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	var md bytes.Buffer
	r.markdown(&md, charts)
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// markdown writes RESULTS.md.
func (r *Report) markdown(w io.Writer, charts []chart) {
	fmt.Fprint(w, "# Benchmark results\n\n")
	fmt.Fprint(w, introProse)
	if r.Quick {
		fmt.Fprint(w, "**This is a --quick run: tiny sizes, one round. Its figures check that every workload works; they measure nothing.**\n\n")
	}
	fmt.Fprint(w, "## Machine and command\n\n")
	fmt.Fprintf(w, "```sh\n%s\n```\n\n", r.Command)
	fmt.Fprintf(w, "- date: %s\n", r.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- CPU: %s, %d cores\n", dash(r.Machine.CPU), r.Machine.Cores)
	fmt.Fprintf(w, "- OS: %s, kernel %s\n", r.Machine.OS, dash(r.Machine.Kernel))
	fmt.Fprintf(w, "- Go: %s\n", r.Machine.Go)
	if r.Machine.Revision != "" {
		fmt.Fprintf(w, "- uno: %s\n", r.Machine.Revision)
	}
	for _, path := range sortedKeys(r.Machine.Modules) {
		fmt.Fprintf(w, "- %s %s\n", path, r.Machine.Modules[path])
	}
	fmt.Fprintf(w, "- databases in %s\n", r.Machine.TempDir)
	fmt.Fprintf(w, "- rounds: %d (each workload and its ceilings alternate round by round; the bootstraps, the query API and the browser run once, the browser's benchmarks 3 times each inside it); timed benchmarks run %s per round; figures are medians, with the min–max over rounds in brackets\n\n", r.Rounds, r.BenchTime)

	fmt.Fprint(w, "## Targets\n\n")
	fmt.Fprintln(w, "| workload | uno | uno / ceiling | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.Workload, t.Uno, dash(t.Ratio), t.Target, t.met())
	}
	fmt.Fprintln(w)
	if len(charts) > 0 {
		fmt.Fprint(w, "## Charts\n\n")
		for _, c := range charts {
			fmt.Fprintf(w, "![%s](charts/%s)\n\n", c.title, c.file)
		}
	}
	for _, s := range r.sections {
		fmt.Fprintf(w, "## %s\n\n", s.title)
		if s.before != "" {
			fmt.Fprint(w, s.before, "\n")
		}
		if len(s.rows) > 0 {
			Markdown(w, s.rows)
			fmt.Fprintln(w)
		}
		if s.after != "" {
			fmt.Fprint(w, s.after, "\n")
		}
	}
	fmt.Fprint(w, notMeasuredProse)
}

// Markdown writes rows as a Markdown table.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| workload | uno | ceiling | uno / ceiling | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		met := ""
		if r.Checked {
			met = r.met()
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Uno, dash(r.Ceiling), dash(r.Ratio), dash(r.Target), dash(met))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
