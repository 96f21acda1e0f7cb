package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// ErrNotHealthy is uno health's error when the server did not answer 200.
var ErrNotHealthy = errors.New("not healthy")

// healthOptions are uno health's settings.
type healthOptions struct {
	URL     string
	Timeout time.Duration
}

func (o *healthOptions) validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want an http(s) URL such as http://127.0.0.1:8080/readyz", o.URL)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration such as 3s", o.Timeout)
	}
	return nil
}

func healthCmd() *cobra.Command {
	var o healthOptions
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a running server's readiness (or health) and exit 0 if it answers 200",
		Long: `Asks a running uno serve whether it is ready: GET --url (default
http://127.0.0.1:8080/readyz) and exit 0 on 200 OK. Anything else (a 503
while the log is unavailable or the server is draining, a refused
connection, no answer within --timeout) prints why and exits 1.

It is the container health check: a distroless image has no shell or
curl. Use --url http://127.0.0.1:8080/healthz to check only that the
process answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return health(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "http://127.0.0.1:8080/readyz", "the URL to check: the server's /readyz or /healthz")
	f.DurationVar(&o.Timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// health checks o.URL once, printing the answer.
func health(ctx context.Context, o healthOptions, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: no answer within %s (is uno serve running there?): %w", ErrNotHealthy, o.URL, o.Timeout, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s: %s", ErrNotHealthy, o.URL, resp.Status, text)
	}
	fmt.Fprintf(out, "%s: %s\n", o.URL, text)
	return nil
}
