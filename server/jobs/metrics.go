package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var jobsDesc = prometheus.NewDesc("uno_jobs", "Background jobs in the queue (shared by every node), by state and kind.", []string{"state", "kind"}, nil)

// collector reports the queue's jobs by state and kind at each scrape.
type collector struct{ j *Jobs }

// Collector returns a Prometheus collector of the gauge uno_jobs{state,
// kind}: the jobs in the queue, counted at each scrape (bounded by 5s).
func (j *Jobs) Collector() prometheus.Collector { return collector{j} }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.j.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n.N), n.State, n.Kind)
	}
}
