//! Streams of services that do not watch the shutdown themselves (gRPC health `Watch`,
//! reflection) ended with UNAVAILABLE when it begins. Left open they would hold their
//! connections, and so the process, for the whole grace period, although nothing they
//! do needs draining. Their request streams end there too: a client that keeps sending
//! (a reflection stream left open) would otherwise keep the call, and the connection,
//! alive. The violation feed ends its streams itself.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

/// `inner`, whose responses end at `stop`.
#[derive(Clone)]
pub struct EndAtShutdown<S> {
    inner: S,
    stop: CancellationToken,
}

impl<S> EndAtShutdown<S> {
    pub fn new(inner: S, stop: CancellationToken) -> Self {
        Self { inner, stop }
    }
}

impl<S: NamedService> NamedService for EndAtShutdown<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for EndAtShutdown<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let ending = |inner, answer| EndingBody {
            inner,
            stop: self.stop.clone().cancelled_owned(),
            answer,
            ended: false,
        };
        let request = request.map(|inner| Body::new(ending(inner, false)));
        let mut response_body = ending(Body::empty(), true);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| {
                response_body.inner = inner;
                Body::new(response_body)
            }))
        })
    }
}

pin_project! {
    /// A body that ends once `stop` fires: an answer with UNAVAILABLE trailers, a
    /// request as if the client had finished sending.
    struct EndingBody {
        #[pin]
        inner: Body,
        #[pin]
        stop: WaitForCancellationFutureOwned,
        answer: bool,
        ended: bool,
    }
}

impl http_body::Body for EndingBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        let stopped = this.stop.poll(cx).is_ready();
        match this.inner.poll_frame(cx) {
            // What the service has ready still goes out (a watch's NOT_SERVING, sent
            // just before the stop), and before the stop everything goes as it is.
            Poll::Ready(Some(Ok(frame))) if frame.is_data() && *this.answer => {
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(end) if !stopped => {
                *this.ended = end.is_none();
                return Poll::Ready(end);
            }
            Poll::Pending if !stopped => return Poll::Pending,
            // Stopped: however the service would end (it may close cleanly, seeing its
            // request end at the same moment), the caller is told UNAVAILABLE.
            _ => {}
        }
        *this.ended = true;
        if !*this.answer {
            return Poll::Ready(None);
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(tonic::Code::Unavailable as i32));
        trailers.insert("grpc-message", HeaderValue::from_static("server%20shutting%20down"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }
}
