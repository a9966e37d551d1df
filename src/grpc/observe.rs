//! Observation of every RPC: a tracing span (method, request id, org, status code,
//! latency) opened when the request arrives and closed when the response ends, so
//! streams are measured to their last message and a client that goes away is logged as
//! CANCELLED. Metrics follow the grpc-ecosystem names and labels (go-grpc-prometheus),
//! so dashboards built for them work unchanged. The request id is the caller's
//! `x-request-id`, or a new one, and goes back in the response's `x-request-id`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use http_body::Frame;
use metrics::SharedString;
use pin_project_lite::pin_project;
use prost::Message as _;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

/// Layer that opens one span per RPC and logs its outcome.
#[derive(Clone, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
}

/// Logs the end of one RPC exactly once: on its status, or on drop if none came.
struct Outcome {
    span: Span,
    labels: Labels,
    started: Instant,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        // Whole microseconds as milliseconds with three decimals, not 1.0814100000000002.
        let latency_ms = elapsed.as_micros() as f64 / 1000.0;
        let code_name = code_label(code);
        self.labels.handled(code_name, elapsed.as_secs_f64());
        let _entered = self.span.enter();
        match code {
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => {
                tracing::warn!(code = %code_name, latency_ms, "rpc finished");
            }
            _ => tracing::info!(code = %code_name, latency_ms, "rpc finished"),
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // The body was dropped before its status: the client cancelled or went away.
        self.finish(Code::Cancelled);
    }
}

/// The grpc-ecosystem labels of one RPC. Those of every method served are made once
/// (shared strings: a call clones reference counts, not text).
#[derive(Clone)]
struct Labels {
    service: SharedString,
    method: SharedString,
    kind: &'static str,
}

impl Labels {
    /// From the request path `/package.Service/Method`.
    fn of(path: &str) -> Self {
        let trimmed = path.trim_start_matches('/');
        if let Some(known) = method_labels().get(trimmed) {
            return known.clone();
        }
        let (service, method) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        Self { service: service.to_owned().into(), method: method.to_owned().into(), kind: "unary" }
    }

    fn started(&self) {
        metrics::counter!(
            "grpc_server_started_total",
            "grpc_service" => self.service.clone(),
            "grpc_method" => self.method.clone(),
            "grpc_type" => self.kind
        )
        .increment(1);
    }

    fn handled(&self, code: &'static str, seconds: f64) {
        metrics::counter!(
            "grpc_server_handled_total",
            "grpc_service" => self.service.clone(),
            "grpc_method" => self.method.clone(),
            "grpc_type" => self.kind,
            "grpc_code" => code
        )
        .increment(1);
        metrics::histogram!(
            "grpc_server_handling_seconds",
            "grpc_service" => self.service.clone(),
            "grpc_method" => self.method.clone(),
            "grpc_type" => self.kind
        )
        .record(seconds);
    }
}

/// The labels of every method served, by `package.Service/Method`, its `grpc_type`
/// (`unary`, `server_stream`, `client_stream` or `bidi_stream`) read from the
/// descriptors of the contract, health and reflection, so a new streaming method needs
/// no list kept here.
fn method_labels() -> &'static HashMap<String, Labels> {
    static KINDS: OnceLock<HashMap<String, Labels>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let sets = [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut kinds = HashMap::new();
        for set in sets {
            let set =
                prost_types::FileDescriptorSet::decode(set).expect("descriptor sets built into the binary");
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        let kind = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => "unary",
                            (false, true) => "server_stream",
                            (true, false) => "client_stream",
                            (true, true) => "bidi_stream",
                        };
                        let service_name = format!("{}.{}", file.package(), service.name());
                        let labels = Labels {
                            service: SharedString::from_shared(Arc::from(service_name.as_str())),
                            method: SharedString::from_shared(Arc::from(method.name())),
                            kind,
                        };
                        kinds.insert(format!("{service_name}/{}", method.name()), labels);
                    }
                }
            }
        }
        kinds
    })
}

/// A status code as the grpc-ecosystem label spells it (Go's `codes.Code` names: `OK`,
/// `Canceled`, `InvalidArgument`, ...).
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A request's headers as OpenTelemetry reads W3C trace context from them.
struct TraceHeaders<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's trace (W3C `traceparent`), to continue; empty when it sent none.
fn caller_trace(headers: &http::HeaderMap) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&TraceHeaders(headers))
}

/// The header a call's request id travels in, both ways.
const REQUEST_ID: &str = "x-request-id";

/// The caller's request id when it sent a usable one (visible ASCII, at most 128
/// bytes), else a new UUID v7.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).expect("a UUID is a header value")
        })
}

fn code_of(headers: &http::HeaderMap) -> Option<Code> {
    headers.get("grpc-status").map(|v| Code::from_bytes(v.as_bytes()))
}

pin_project! {
    /// A response body that reports the RPC's status when its trailers pass by.
    struct ObservedBody {
        #[pin]
        inner: Body,
        outcome: Option<Outcome>,
    }
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let code = match &frame {
            Some(Ok(f)) => f.trailers_ref().map(|t| code_of(t).unwrap_or(Code::Ok)),
            Some(Err(status)) => Some(status.code()),
            None => Some(Code::Ok),
        };
        if let Some(code) = code
            && let Some(mut outcome) = this.outcome.take()
        {
            outcome.finish(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = req.uri().path().to_owned();
        let request_id = request_id(req.headers());
        let parent = caller_trace(req.headers());
        let trace = {
            use opentelemetry::trace::TraceContextExt as _;
            let context = parent.span().span_context().clone();
            context.is_valid().then(|| context.trace_id().to_string())
        };
        let span = tracing::info_span!(
            "rpc",
            method = %method,
            // Exported spans are named as OpenTelemetry's RPC conventions have it.
            otel.name = method.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            request_id = request_id.to_str().unwrap_or_default(),
            trace_id = trace.as_deref(),
            org = tracing::field::Empty,
        );
        // The exported span continues the caller's trace (no-op without an exporter).
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        let labels = Labels::of(&method);
        labels.started();
        let started = Instant::now();
        let fut_span = span.clone();
        Box::pin(
            async move {
                let mut response = inner.call(req).await?;
                response.headers_mut().insert(REQUEST_ID, request_id);
                let mut outcome = Outcome { span, labels, started, done: false };
                // An error before any message travels in the headers ("trailers-only").
                if let Some(code) = code_of(response.headers()) {
                    outcome.finish(code);
                }
                Ok(response.map(|inner| Body::new(ObservedBody { inner, outcome: Some(outcome) })))
            }
            .instrument(fut_span),
        )
    }
}
