package admin

import (
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func hist(count uint64, buckets ...[2]float64) *dto.Histogram {
	h := &dto.Histogram{SampleCount: proto.Uint64(count)}
	for _, b := range buckets {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b[0]), CumulativeCount: proto.Uint64(uint64(b[1]))})
	}
	return h
}

// The quantiles of a window are those of the observations made in it,
// interpolated within a bucket as Prometheus's histogram_quantile does.
func TestQuantiles(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// 100 observations: 50 ≤ 1 ms, 40 in (1, 4] ms, 10 in (4, 16] ms.
	cur := hist(100, [2]float64{0.001, 50}, [2]float64{0.004, 90}, [2]float64{0.016, 100})
	q := quantiles(cur, nil)
	if q.Count != 100 || !near(q.P50, 1) || !near(q.P99, 4+12*0.9) {
		t.Fatalf("all: %+v, want p50 1 ms, p99 14.8 ms", q)
	}
	// The previous sample held the first 50 (all ≤ 1 ms): the window's
	// 50 are 40 in (1, 4] and 10 in (4, 16].
	prev := hist(50, [2]float64{0.001, 50}, [2]float64{0.004, 50}, [2]float64{0.016, 50})
	q = quantiles(cur, prev)
	if q.Count != 50 || !near(q.P50, 1+3*25.0/40) || !near(q.P99, 4+12*(49.5-40)/10) {
		t.Fatalf("window: %+v", q)
	}
	if q := quantiles(cur, cur); q != (Quantiles{}) {
		t.Fatalf("an empty window: %+v, want zeros", q)
	}
	if q := quantiles(nil, nil); q != (Quantiles{}) {
		t.Fatalf("no histogram: %+v", q)
	}
}
