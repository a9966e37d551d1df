//! Logging and tracing. Logs go to stderr (stdout is kept for command output such as
//! new ids), as human-readable lines or one JSON object per line; `RUST_LOG` tunes
//! levels. With an OTLP endpoint, the same spans (one per RPC, and what runs inside
//! it) are exported over OTLP/gRPC to a collector, continuing the caller's W3C trace.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for terminals.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What must outlive the process's work: the span exporter, flushed on drop.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing spans at exit: {e}");
        }
    }
}

/// Installs the global subscriber; `default_level` applies when `RUST_LOG` is unset.
/// With `otlp_endpoint`, spans are exported there; this must then run inside the tokio
/// runtime that lives as long as the process (the exporter's connection runs on it).
pub fn init(
    format: LogFormat,
    default_level: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Pretty => logs.compact().boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).boxed(),
    };
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("billing-commitments")));
    // Already installed (tests install it once per process): keep the first one.
    let _ = tracing_subscriber::registry().with(filter).with(logs).with(spans).try_init();
    Ok(TelemetryGuard { provider })
}

/// Spans batched and sent to `endpoint` over OTLP/gRPC, under the service name
/// `OTEL_SERVICE_NAME` (default `billing-commitments`).
fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    // Built inside the runtime, the exporter's connection runs there; the SDK's batch
    // thread only waits on it (a connection made outside would need a reactor that
    // thread does not have).
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "billing-commitments".into());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}
