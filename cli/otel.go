package cli

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// traceFlushTimeout bounds the export of the last spans at shutdown.
const traceFlushTimeout = 5 * time.Second

// otelTracerProvider returns the tracer provider of `uno serve`, set up
// from the standard OpenTelemetry environment variables (lookup reads
// them), and the function that flushes and stops it at shutdown.
//
// Tracing is off (a no-op provider) unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set or OTEL_TRACES_EXPORTER is
// otlp; OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off
// whatever else is set. When on, spans go in batches to an OTLP/HTTP
// (protobuf) exporter, which reads the OTEL_EXPORTER_OTLP_* variables
// (endpoint, headers, timeout, TLS); OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES name the service (default "uno"),
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose the sampler and
// OTEL_BSP_* tune the batching. The provider is also installed as the
// otel global, which the logs' async projections trace to.
func otelTracerProvider(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) (trace.TracerProvider, func(), error) {
	off := func() (trace.TracerProvider, func(), error) { return noop.NewTracerProvider(), func() {}, nil }
	env := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return off()
	}
	switch exp := strings.ToLower(env("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return off()
	case "", "otlp":
		if exp == "" && env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return off()
		}
	default:
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: uno serve exports traces with otlp (or none): set one of them", exp)
	}
	proto := cmp.Or(env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), env("OTEL_EXPORTER_OTLP_PROTOCOL"))
	if proto != "" && proto != "http/protobuf" {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: uno serve exports OTLP over http/protobuf: set that or unset it", proto)
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter (check the OTEL_EXPORTER_OTLP_* variables): %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", "uno")), resource.Environment())
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	// The logs' async projections trace to the global provider.
	otel.SetTracerProvider(tp)
	name, _ := res.Set().Value("service.name")
	logger.Info("tracing on: exporting spans over OTLP/HTTP", "service", name.AsString())
	return tp, func() {
		fctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		if err := tp.Shutdown(fctx); err != nil {
			logger.Warn("tracing: the last spans were not all exported", "err", err)
		}
	}, nil
}
