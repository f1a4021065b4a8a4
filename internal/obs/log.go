package obs

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// requestIDKey is the context key of a request's id.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the HTTP request it serves
// (X-Request-Id), for the log lines written in its course. It costs a
// request one allocation.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return &requestCtx{Context: ctx, id: id}
}

// requestCtx is context.WithValue for the request id, in one allocation
// instead of two (the context and the boxed string).
type requestCtx struct {
	context.Context
	id string
}

func (c *requestCtx) Value(key any) any {
	if _, ok := key.(requestIDKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// RequestID returns the request id ctx carries ("" when none).
func RequestID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey{}).(*requestCtx); ok {
		return c.id
	}
	return ""
}

// Logger returns log with LogHandler's attributes (log itself when it has them).
func Logger(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(logHandler); ok {
		return log
	}
	return slog.New(LogHandler(log.Handler()))
}

// LogHandler wraps a slog handler so that every record logged with a
// context (slog's *Context methods) carries the context's request_id, and
// trace_id and span_id when a span is in it: the one place those
// attributes come from.
func LogHandler(h slog.Handler) slog.Handler {
	if lh, ok := h.(logHandler); ok {
		return lh
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
