//! The layers every call meets first, outermost first.
//!
//! The deadline comes before everything else. tonic's own timeout (which answers
//! `DEADLINE_EXCEEDED`) starts its clock when the call is accepted, in the same
//! synchronous step as these layers' `call` and just after it (tonic 0.14's `GrpcTimeout`
//! calls its inner service, then creates its timer), so the deadline set here is never
//! later than the answer's. A layer that defers its inner `call` into
//! its future (as the observing one does, to open its span) would start the deadline only
//! when the call's task first runs, which on a busy machine is milliseconds later. Work
//! could then start after its caller was told `DEADLINE_EXCEEDED`, which `db::deadline`
//! promises never happens.

use std::time::Duration;

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};

use super::deadline::DeadlineLayer;
use super::observe::ObserveLayer;

/// The deadline, then the observing span and metrics.
pub fn layers(
    request_timeout: Duration,
) -> ServiceBuilder<Stack<ObserveLayer, Stack<DeadlineLayer, Identity>>> {
    ServiceBuilder::new().layer(DeadlineLayer::new(request_timeout)).layer(ObserveLayer)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use http::{Request, Response};
    use tonic::body::Body;
    use tower::Service;

    use super::*;

    #[tokio::test]
    async fn a_calls_deadline_starts_when_the_call_is_accepted_not_when_its_task_first_runs() {
        let timeout = Duration::from_secs(5);
        let seen = Arc::new(Mutex::new(None));
        let inner = {
            let seen = Arc::clone(&seen);
            tower::service_fn(move |_req: Request<Body>| {
                let seen = Arc::clone(&seen);
                async move {
                    *seen.lock().unwrap() = crate::db::deadline::current();
                    Ok::<_, Infallible>(Response::new(Body::empty()))
                }
            })
        };
        let mut service = layers(timeout).service(inner);

        let call = service.call(Request::new(Body::empty()));
        let accepted = Instant::now();
        // The call's task runs later than it was accepted (the clock moves on first).
        while Instant::now() <= accepted {
            std::hint::spin_loop();
        }
        call.await.unwrap();

        let deadline = seen.lock().unwrap().expect("the work runs with a deadline");
        assert!(deadline <= accepted + timeout, "the deadline is counted from the call's first poll");
    }
}
