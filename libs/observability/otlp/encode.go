package otlp

import (
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The field numbers of the OTLP messages a trace export writes
// (opentelemetry-proto: collector/trace/v1, trace/v1, common/v1,
// resource/v1). Only these messages are needed, which is why they are
// encoded here rather than through the generated Go types: those come with
// the collector's gRPC service and link gRPC into every service.
const (
	requestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	resourceSpansResource   = 1
	resourceSpansScopeSpans = 2
	resourceSpansSchemaURL  = 3

	resourceAttributes = 1

	scopeSpansScope     = 1
	scopeSpansSpans     = 2
	scopeSpansSchemaURL = 3

	scopeName       = 1
	scopeVersion    = 2
	scopeAttributes = 3

	spanTraceID           = 1
	spanSpanID            = 2
	spanTraceState        = 3
	spanParentSpanID      = 4
	spanName              = 5
	spanKind              = 6
	spanStart             = 7
	spanEnd               = 8
	spanAttributes        = 9
	spanDroppedAttributes = 10
	spanEvents            = 11
	spanDroppedEvents     = 12
	spanLinks             = 13
	spanDroppedLinks      = 14
	spanStatus            = 15
	spanFlags             = 16

	eventTime              = 1
	eventName              = 2
	eventAttributes        = 3
	eventDroppedAttributes = 4

	linkTraceID           = 1
	linkSpanID            = 2
	linkTraceState        = 3
	linkAttributes        = 4
	linkDroppedAttributes = 5
	linkFlags             = 6

	statusMessage = 2
	statusCode    = 3

	keyValueKey   = 1
	keyValueValue = 2

	anyString          = 1
	anyBool            = 2
	anyInt             = 3
	anyDouble          = 4
	anyArray           = 5
	anyKeyValueList    = 6
	anyBytes           = 7
	arrayValues        = 1
	keyValueListValues = 1
)

// Values of OTLP enums and flags that differ from OpenTelemetry Go's.
const (
	statusCodeOK            = 1 // codes.Ok is 2 in the SDK
	statusCodeError         = 2 // codes.Error is 1
	flagsContextHasIsRemote = 0x100
	flagsContextIsRemote    = 0x200

	spanKindUnspecified uint64 = 0
)

// encodeRequest encodes spans as an ExportTraceServiceRequest: grouped by
// resource, then by instrumentation scope, each group in the order its
// first span came.
func encodeRequest(spans []sdktrace.ReadOnlySpan) []byte {
	type scopeGroup struct {
		scope instrumentation.Scope
		spans []sdktrace.ReadOnlySpan
	}
	type resourceGroup struct {
		span   sdktrace.ReadOnlySpan // the first, for its resource
		scopes []*scopeGroup
		byKey  map[instrumentation.Scope]*scopeGroup
	}
	var groups []*resourceGroup
	byResource := map[attribute.Distinct]*resourceGroup{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		key := s.Resource().Equivalent()
		rg := byResource[key]
		if rg == nil {
			rg = &resourceGroup{span: s, byKey: map[instrumentation.Scope]*scopeGroup{}}
			byResource[key] = rg
			groups = append(groups, rg)
		}
		scope := s.InstrumentationScope()
		sg := rg.byKey[scope]
		if sg == nil {
			sg = &scopeGroup{scope: scope}
			rg.byKey[scope] = sg
			rg.scopes = append(rg.scopes, sg)
		}
		sg.spans = append(sg.spans, s)
	}

	var out []byte
	for _, rg := range groups {
		out = appendMessage(out, requestResourceSpans, func(b []byte) []byte {
			res := rg.span.Resource()
			b = appendMessage(b, resourceSpansResource, func(b []byte) []byte {
				iter := res.Iter()
				for iter.Next() {
					b = appendKeyValue(b, resourceAttributes, iter.Attribute())
				}
				return b
			})
			for _, sg := range rg.scopes {
				b = appendMessage(b, resourceSpansScopeSpans, func(b []byte) []byte {
					if sg.scope != (instrumentation.Scope{}) {
						b = appendMessage(b, scopeSpansScope, func(b []byte) []byte {
							b = appendString(b, scopeName, sg.scope.Name)
							b = appendString(b, scopeVersion, sg.scope.Version)
							iter := sg.scope.Attributes.Iter()
							for iter.Next() {
								b = appendKeyValue(b, scopeAttributes, iter.Attribute())
							}
							return b
						})
					}
					for _, s := range sg.spans {
						b = appendMessage(b, scopeSpansSpans, func(b []byte) []byte { return appendSpan(b, s) })
					}
					return appendString(b, scopeSpansSchemaURL, sg.scope.SchemaURL)
				})
			}
			return appendString(b, resourceSpansSchemaURL, res.SchemaURL())
		})
	}
	return out
}

func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, spanTraceID, tid[:])
	b = appendBytes(b, spanSpanID, sid[:])
	b = appendString(b, spanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, spanParentSpanID, psid[:])
	}
	b = appendString(b, spanName, s.Name())
	b = appendVarint(b, spanKind, kind(s.SpanKind()))
	b = appendFixed64(b, spanStart, unixNano(s.StartTime().UnixNano()))
	b = appendFixed64(b, spanEnd, unixNano(s.EndTime().UnixNano()))
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, spanAttributes, kv)
	}
	b = appendVarint(b, spanDroppedAttributes, count(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = appendMessage(b, spanEvents, func(b []byte) []byte {
			b = appendFixed64(b, eventTime, unixNano(e.Time.UnixNano()))
			b = appendString(b, eventName, e.Name)
			for _, kv := range e.Attributes {
				b = appendKeyValue(b, eventAttributes, kv)
			}
			return appendVarint(b, eventDroppedAttributes, count(e.DroppedAttributeCount))
		})
	}
	b = appendVarint(b, spanDroppedEvents, count(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, spanLinks, func(b []byte) []byte {
			tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = appendBytes(b, linkTraceID, tid[:])
			b = appendBytes(b, linkSpanID, sid[:])
			b = appendString(b, linkTraceState, l.SpanContext.TraceState().String())
			for _, kv := range l.Attributes {
				b = appendKeyValue(b, linkAttributes, kv)
			}
			b = appendVarint(b, linkDroppedAttributes, count(l.DroppedAttributeCount))
			return appendFixed32(b, linkFlags, flags(l.SpanContext.TraceFlags(), l.SpanContext))
		})
	}
	b = appendVarint(b, spanDroppedLinks, count(s.DroppedLinks()))
	// A span always carries its status, even an unset one, as the
	// OpenTelemetry exporters send it.
	st := s.Status()
	b = appendMessage(b, spanStatus, func(b []byte) []byte {
		b = appendString(b, statusMessage, st.Description)
		switch st.Code {
		case codes.Ok:
			b = appendVarint(b, statusCode, statusCodeOK)
		case codes.Error:
			b = appendVarint(b, statusCode, statusCodeError)
		}
		return b
	})
	return appendFixed32(b, spanFlags, flags(sc.TraceFlags(), parent))
}

// flags are the W3C trace flags in the low byte, and whether the parent is
// remote, known and stated.
func flags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagsContextHasIsRemote
	if parent.IsRemote() {
		f |= flagsContextIsRemote
	}
	return f
}

// kind maps a span kind to OTLP's SpanKind, which numbers them alike.
func kind(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal, trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer:
		return uint64(k)
	default:
		return spanKindUnspecified
	}
}

func unixNano(n int64) uint64 { return uint64(max(0, n)) }

func count(n int) uint64 { return uint64(min(max(0, int64(n)), math.MaxUint32)) }

func appendKeyValue(b []byte, field protowire.Number, kv attribute.KeyValue) []byte {
	return appendMessage(b, field, func(b []byte) []byte {
		b = appendString(b, keyValueKey, string(kv.Key))
		return appendMessage(b, keyValueValue, func(b []byte) []byte { return appendAnyValue(b, kv.Value) })
	})
}

// appendAnyValue writes an AnyValue's contents. Its value is a oneof, so a
// zero value is written too: it is what was set.
func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		return appendBool(b, anyBool, v.AsBool())
	case attribute.INT64:
		b = protowire.AppendTag(b, anyInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v.AsInt64())) //nolint:gosec // G115: protobuf's int64 is the two's complement as a varint
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, anyString, protowire.BytesType)
		return protowire.AppendString(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, anyBytes, protowire.BytesType)
		return protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendArray(b, len(v.AsBoolSlice()), func(i int) attribute.Value { return attribute.BoolValue(v.AsBoolSlice()[i]) })
	case attribute.INT64SLICE:
		return appendArray(b, len(v.AsInt64Slice()), func(i int) attribute.Value { return attribute.Int64Value(v.AsInt64Slice()[i]) })
	case attribute.FLOAT64SLICE:
		return appendArray(b, len(v.AsFloat64Slice()), func(i int) attribute.Value { return attribute.Float64Value(v.AsFloat64Slice()[i]) })
	case attribute.STRINGSLICE:
		return appendArray(b, len(v.AsStringSlice()), func(i int) attribute.Value { return attribute.StringValue(v.AsStringSlice()[i]) })
	case attribute.SLICE:
		values := v.AsSlice()
		return appendArray(b, len(values), func(i int) attribute.Value { return values[i] })
	case attribute.MAP:
		return appendMessage(b, anyKeyValueList, func(b []byte) []byte {
			for _, kv := range v.AsMap() {
				b = appendKeyValue(b, keyValueListValues, kv)
			}
			return b
		})
	case attribute.EMPTY:
		return b
	default:
		b = protowire.AppendTag(b, anyString, protowire.BytesType)
		return protowire.AppendString(b, "INVALID")
	}
}

func appendArray(b []byte, n int, at func(int) attribute.Value) []byte {
	return appendMessage(b, anyArray, func(b []byte) []byte {
		for i := range n {
			b = appendMessage(b, arrayValues, func(b []byte) []byte { return appendAnyValue(b, at(i)) })
		}
		return b
	})
}

// appendMessage writes a length-delimited field whose contents body
// appends. The contents are written in place after room for a one-byte
// length, moved along when the length needs more.
func appendMessage(b []byte, field protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	at := len(b)
	b = append(b, 0)
	b = body(b)
	n := len(b) - at - 1
	length := uint64(n) //nolint:gosec // G115: a length is never negative
	size := protowire.SizeVarint(length)
	if size == 1 {
		b[at] = byte(length) //nolint:gosec // G115: under 128 here, one varint byte
		return b
	}
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], length)
	return b
}

// The scalar writers omit a field at its zero value, as proto3 does.

func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, field protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, field protowire.Number, v bool) []byte {
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

func appendFixed64(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, field protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}
