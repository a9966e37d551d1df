//! Observation of every RPC: a tracing span (method, org, status code, latency) opened
//! when the request arrives and closed when the response ends, so streams are measured
//! to their last message and a client that goes away is logged as CANCELLED.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
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
    method: String,
    started: Instant,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let latency_ms = elapsed * 1000.0;
        let code_name = format!("{code:?}");
        record(&self.method, &code_name, elapsed);
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

/// `/package.Service/Method` as its service and method labels.
fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    match trimmed.split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (trimmed.to_owned(), String::new()),
    }
}

fn record(path: &str, code: &str, seconds: f64) {
    let (service, method) = split_path(path);
    metrics::counter!(
        "grpc_server_handled_total",
        "service" => service.clone(),
        "method" => method.clone(),
        "code" => code.to_owned()
    )
    .increment(1);
    metrics::histogram!("grpc_server_handling_seconds", "service" => service, "method" => method)
        .record(seconds);
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
        let span = tracing::info_span!(
            "rpc",
            method = %method,
            org = tracing::field::Empty,
        );
        let started = Instant::now();
        let fut_span = span.clone();
        Box::pin(
            async move {
                let response = inner.call(req).await?;
                let mut outcome = Outcome { span, method, started, done: false };
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
