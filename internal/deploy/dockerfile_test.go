package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction: its keyword (upper case) and
// the rest of its line, continuations joined.
type instruction struct {
	cmd, args string
	line      int
}

// parseDockerfile splits a Dockerfile into instructions, dropping
// comments and joining lines ending in a backslash.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		} else if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// checkDockerfile returns what is wrong with a Dockerfile for uno's image.
func checkDockerfile(text string) []string {
	var problems []string
	ins := parseDockerfile(text)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				problems = append(problems, "an instruction before the first FROM: "+in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
		if in.cmd == "ADD" && strings.Contains(in.args, "://") {
			problems = append(problems, "ADD of a URL (line "+strconv.Itoa(in.line)+"): the build must not download")
		}
	}
	if len(stages) < 2 {
		return append(problems, "want a multi-stage build (a build stage and a final stage)")
	}
	buildRuns := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.cmd == "RUN" && strings.Contains(in.args, "docs/deploy/build.sh") {
				buildRuns = true
			}
		}
	}
	if !buildRuns {
		problems = append(problems, "no build stage RUNs docs/deploy/build.sh")
	}
	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)
	if len(base) == 0 || !(strings.HasPrefix(base[0], "gcr.io/distroless/static") || base[0] == "scratch") {
		problems = append(problems, "the final stage's base is not distroless static or scratch: "+final[0].args)
	}
	var user, health, entry string
	exposed, volume := false, false
	for _, in := range final[1:] {
		switch in.cmd {
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			health = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "EXPOSE":
			exposed = strings.Contains(in.args, "8080")
		case "VOLUME":
			volume = true
		case "RUN":
			problems = append(problems, "a RUN in the final stage (distroless has no shell): "+in.args)
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" || name == "0" {
		problems = append(problems, "the final stage's USER is not a non-root user: "+user)
	}
	if !strings.Contains(health, `"health"`) || !strings.Contains(health, "CMD [") || !strings.Contains(health, "/readyz") {
		problems = append(problems, "HEALTHCHECK does not run `uno health` on /readyz in exec form: "+health)
	}
	if !strings.Contains(entry, `"serve"`) {
		problems = append(problems, "ENTRYPOINT does not run uno serve: "+entry)
	}
	if !exposed {
		problems = append(problems, "no EXPOSE 8080")
	}
	if !volume {
		problems = append(problems, "no VOLUME for the data directory")
	}
	return problems
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs/deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if p := checkDockerfile(text); len(p) > 0 {
		t.Fatalf("docs/deploy/Dockerfile:\n%s", strings.Join(p, "\n"))
	}
	// The check can fail: each broken copy is refused for its fault.
	broken := []struct{ name, from, to, want string }{
		{"root user", "USER nonroot:nonroot", "USER root", "non-root"},
		{"no user", "USER nonroot:nonroot", "", "non-root"},
		{"fat base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm", "distroless"},
		{"curl health check", `CMD ["/usr/local/bin/uno", "health", "--url", "http://127.0.0.1:8080/readyz", "--timeout", "3s"]`, `CMD curl -f http://127.0.0.1:8080/readyz`, "HEALTHCHECK"},
		{"other build", "RUN UNO_BUILDVCS=false docs/deploy/build.sh /out/uno", "RUN CGO_ENABLED=1 go build -o /out/uno ./cmd/uno", "build.sh"},
		{"ADD of a URL", "COPY . .", "ADD https://example.com/src.tar.gz /src/", "ADD of a URL"},
	}
	for _, bc := range broken {
		if !strings.Contains(text, bc.from) {
			t.Fatalf("%s: the Dockerfile no longer has %q to break", bc.name, bc.from)
		}
		p := checkDockerfile(strings.Replace(text, bc.from, bc.to, 1))
		if !strings.Contains(strings.Join(p, "\n"), bc.want) {
			t.Errorf("%s: problems %q, want one naming %q", bc.name, p, bc.want)
		}
	}
}
