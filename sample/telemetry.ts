import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * `THORN_SAMPLE_OTEL=console`: an OpenTelemetry SDK that prints every span, and the metrics every
 * `THORN_SAMPLE_OTEL_INTERVAL` ms (default 10000), to the console. Started before the Nest app is created, as
 * OpenTelemetry requires. A real app would use `@opentelemetry/sdk-node` with an OTLP exporter instead.
 * Returns a function that flushes and stops it (null when the variable is not set).
 */
export function startSampleTelemetry(env: NodeJS.ProcessEnv = process.env): (() => Promise<void>) | null {
  if (env.THORN_SAMPLE_OTEL !== 'console') return null;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const tracer = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
  });
  trace.setGlobalTracerProvider(tracer);
  const reader = new PeriodicExportingMetricReader({
    exporter: new ConsoleMetricExporter(),
    exportIntervalMillis: Number(env.THORN_SAMPLE_OTEL_INTERVAL ?? 10_000),
  });
  const meter = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meter);
  return async () => {
    await reader.forceFlush();
    await Promise.all([tracer.shutdown(), meter.shutdown()]);
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  };
}
