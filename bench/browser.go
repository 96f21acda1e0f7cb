package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The browser benchmarks live in internal/browser: they need its test
// harness (the WebAssembly client built, Chromium driven through
// playwright-core), so uno bench runs them under go test, from uno's
// source tree, and takes the figures from their output.

// browserBenchmarks are the benchmarks Browser runs, with the prefix
// their figures take in results.json.
var browserBenchmarks = map[string]string{
	"BrowserDownload":    "download",
	"BrowserFirstPage":   "first-page",
	"BrowserLocalWrites": "writes",
	"NativeLocalWrites":  "native-writes",
	"BrowserSync10k":     "sync10k",
}

// BrowserRounds is how many times each browser benchmark runs in one
// go test invocation (-benchtime Nx): the local writes report their first
// 10,000 rows apart (cold) and the rest as rows/s.
const BrowserRounds = 3

// browserSkipReason says why the browser benchmarks cannot run here, or "".
func browserSkipReason() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "run uno bench from uno's source tree: the browser benchmarks build the WebAssembly client"
	}
	chromium := os.Getenv("UNO_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		return "no Chromium at " + chromium + " (apt-get install chromium, or set UNO_CHROMIUM)"
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(mod), "wasm/node_modules/playwright-core")); err != nil {
		return "playwright-core is not installed (npm ci --prefix wasm)"
	}
	return ""
}

// Browser runs the browser benchmarks (go test ./internal/browser -bench
// ..., BrowserRounds times each) and reports their figures, each unit
// prefixed as browserBenchmarks says: download:gzip-bytes,
// first-page:ms-to-usable,
// writes:rows/s, writes:cold-rows/s, writes:revisit-rows/s,
// native-writes:rows/s, sync10k:s-to-synced.
func Browser(b B) {
	var names []string
	for n := range browserBenchmarks {
		names = append(names, n)
	}
	cmd := exec.Command("go", "test", "github.com/unosync/uno/internal/browser", "-run", "^$",
		"-bench", "^Benchmark("+strings.Join(names, "|")+")$", "-benchtime", fmt.Sprint(BrowserRounds, "x"), "-count", "1", "-timeout", "20m")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("go test ./internal/browser: %v\n%s", err, out)
	}
	figs, err := parseBenchOutput(out)
	if err != nil {
		b.Fatalf("go test ./internal/browser: %v\n%s", err, out)
	}
	for name, prefix := range browserBenchmarks {
		m, ok := figs[name]
		if !ok {
			b.Fatalf("go test ./internal/browser printed no figures for %s:\n%s", name, out)
		}
		for unit, v := range m {
			b.ReportMetric(v, prefix+":"+unit)
		}
	}
}

// benchLine is a result line of go test -bench: the name, -GOMAXPROCS,
// the iterations, then value and unit pairs.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBenchOutput returns the figures of each benchmark in go test
// -bench output, by name (without Benchmark and -GOMAXPROCS) and unit.
func parseBenchOutput(out []byte) (map[string]map[string]float64, error) {
	figs := map[string]map[string]float64{}
	for line := range bytes.Lines(out) {
		m := benchLine.FindSubmatch(bytes.TrimSpace(line))
		if m == nil {
			continue
		}
		f := strings.Fields(string(m[2]))
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("a result line with an odd number of fields: %q", line)
		}
		units := map[string]float64{}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("result line %q: %w", line, err)
			}
			units[f[i+1]] = v
		}
		figs[string(m[1])] = units
	}
	return figs, nil
}
