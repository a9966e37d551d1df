//! Requests over the message size limit answer RESOURCE_EXHAUSTED, the code gRPC
//! prescribes for a message larger than the receiver accepts. Tonic's decoder reports
//! them as OUT_OF_RANGE before any handler runs, so this layer, wrapped around the
//! services, turns exactly that answer into ours (with an `ErrorInfo` like every error).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// How tonic's decoder begins the message of a request over the limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

#[derive(Clone, Default)]
pub struct MessageLimitLayer;

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit { inner }
    }
}

#[derive(Clone)]
pub struct MessageLimit<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for MessageLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            // Only a headers-only error answer can be tonic's decoding refusal.
            let refused = Status::from_header_map(response.headers())
                .filter(|s| s.code() == Code::OutOfRange && s.message().starts_with(TONIC_TOO_LARGE));
            Ok(match refused {
                Some(status) => {
                    let sizes = status.message().trim_start_matches(TONIC_TOO_LARGE).trim_start_matches(':');
                    super::status::message_too_large(sizes.trim()).into_http()
                }
                None => response,
            })
        })
    }
}
