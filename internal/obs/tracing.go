package obs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/pkg/events"
)

// Tracing is off unless a tracer provider has been installed (SetupTracing
// with an OTLP endpoint in the environment, or a test): then the hot paths
// do no tracing work at all, not even a no-op span. Every span inkstream
// makes comes from Tracer.
var tracing struct {
	on     atomic.Bool
	tracer atomic.Pointer[trace.Tracer]
}

// instrumentation names inkstream's tracer.
const instrumentation = "github.com/inkstream/inkstream"

// Tracing reports whether spans are recorded.
func Tracing() bool { return tracing.on.Load() }

// Tracer is inkstream's tracer; call it only when Tracing is true.
func Tracer() trace.Tracer {
	if t := tracing.tracer.Load(); t != nil {
		return *t
	}
	return otel.Tracer(instrumentation)
}

// UseTracerProvider makes tp the provider of every span from now on (and
// OTel's global provider) and turns tracing on; restore puts back what was
// there before. The all-in-one's roles share one process and so one
// provider.
func UseTracerProvider(tp trace.TracerProvider) (restore func()) {
	prevTP, prevOn, prevTracer := otel.GetTracerProvider(), tracing.on.Load(), tracing.tracer.Load()
	otel.SetTracerProvider(tp)
	t := tp.Tracer(instrumentation, trace.WithInstrumentationVersion(Version().Module))
	tracing.tracer.Store(&t)
	tracing.on.Store(true)
	return func() {
		otel.SetTracerProvider(prevTP)
		tracing.tracer.Store(prevTracer)
		tracing.on.Store(prevOn)
	}
}

// Propagator is the W3C trace context (traceparent, tracestate): what a
// client's request, an event's NATS headers and a snapshot's KV headers
// carry.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Environment variables of the OpenTelemetry SDK that decide whether
// inkstream exports traces; the SDK and the OTLP exporters read the rest of
// OTEL_* (headers, certificates, timeouts, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER) themselves.
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter     = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled        = "OTEL_SDK_DISABLED"
)

// TracingHelp is a line for -h: how tracing is switched on.
const TracingHelp = "Traces go to an OTLP collector when " + EnvOTLPEndpoint + " or " + EnvOTLPTracesEndpoint +
	" is set (" + EnvOTLPProtocol + ": http/protobuf, the default, or grpc); without them tracing is off."

// SetupTracing installs a tracer provider that exports to the OTLP endpoint
// named by the standard environment variables, read with getenv, for the
// process service (service.name, unless OTEL_SERVICE_NAME says otherwise).
// Without an endpoint (or with OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none) it installs nothing and tracing stays off.
// shutdown flushes the spans not yet exported and restores the previous
// provider; it is never nil.
func SetupTracing(ctx context.Context, service string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if getenv(EnvOTLPEndpoint) == "" && getenv(EnvOTLPTracesEndpoint) == "" ||
		strings.EqualFold(getenv(EnvSDKDisabled), "true") || getenv(EnvTracesExporter) == "none" {
		return noop, nil
	}
	if e := getenv(EnvTracesExporter); e != "" && e != "otlp" {
		return noop, fmt.Errorf("%s=%q: inkstream exports traces over OTLP only", EnvTracesExporter, e)
	}
	protocol := getenv(EnvOTLPTracesProtocol)
	if protocol == "" {
		protocol = getenv(EnvOTLPProtocol)
	}
	var exp sdktrace.SpanExporter
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return noop, fmt.Errorf("%s=%q: want http/protobuf or grpc", EnvOTLPProtocol, protocol)
	}
	if err != nil {
		return noop, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(Version().Module)))
	if err == nil {
		// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
		var env *resource.Resource
		if env, err = resource.New(ctx, resource.WithFromEnv()); err == nil {
			res, err = resource.Merge(res, env)
		}
	}
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	restore := UseTracerProvider(tp)
	return func(ctx context.Context) error {
		restore()
		return tp.Shutdown(ctx)
	}, nil
}

// traceCarrier is an events.TraceContext as a propagation carrier.
type traceCarrier struct{ tc *events.TraceContext }

func (c traceCarrier) Get(key string) string {
	switch key {
	case events.HeaderTraceParent:
		return c.tc.Parent
	case events.HeaderTraceState:
		return c.tc.State
	}
	return ""
}

func (c traceCarrier) Set(key, value string) {
	switch key {
	case events.HeaderTraceParent:
		c.tc.Parent = value
	case events.HeaderTraceState:
		c.tc.State = value
	}
}

func (c traceCarrier) Keys() []string {
	return []string{events.HeaderTraceParent, events.HeaderTraceState}
}

// TraceOf returns the W3C trace context of the span in ctx, to travel with
// a message; empty when ctx has no span.
func TraceOf(ctx context.Context) events.TraceContext {
	var tc events.TraceContext
	if trace.SpanContextFromContext(ctx).IsValid() {
		Propagator.Inject(ctx, traceCarrier{&tc})
	}
	return tc
}

// WithTrace returns ctx with the remote span that tc names as its parent
// (ctx itself when tc is empty or malformed).
func WithTrace(ctx context.Context, tc events.TraceContext) context.Context {
	if tc.Parent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, traceCarrier{&tc})
}

// Messaging attributes of spans around NATS messages.
var (
	attrNATS = semconv.MessagingSystemKey.String("nats")
)

// StartPublish starts the producer span of a publish to subject in the
// trace of ctx; nil when tracing is off.
func StartPublish(ctx context.Context, name, subject string) (context.Context, trace.Span) {
	if !Tracing() {
		return ctx, nil
	}
	return Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attrNATS, semconv.MessagingOperationTypeSend, semconv.MessagingDestinationName(subject)))
}

// StartProcess starts the consumer span of handling messages: a child of
// the message whose trace is parent, linked to the others in links. It
// returns nil when tracing is off or no message carries a trace.
func StartProcess(ctx context.Context, name string, parent events.TraceContext, links []events.TraceContext, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !Tracing() || parent.Parent == "" {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(attrs, attrNATS, semconv.MessagingOperationTypeProcess)...)}
	for _, l := range links {
		if sc := trace.SpanContextFromContext(WithTrace(context.Background(), l)); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	return Tracer().Start(WithTrace(ctx, parent), name, opts...)
}

// End ends span, recording err, if span is not nil.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
