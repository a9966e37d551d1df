//! A request's `request_id` (AIP-155), checked, with the fingerprint of the rest of the
//! request: two requests are the same request when everything but the id encodes alike
//! (maps encode in key order, see build.rs).

use prost::Message;
use sha2::{Digest, Sha256};

use crate::app::request_ids::RequestId;
use crate::domain::text::check_code;
use crate::domain::validation::Violations;

/// The `request_id` that `field` reaches in `req` (`None` when empty), with its problems.
pub fn request_id<M: Message + Clone>(
    req: &M,
    field: impl FnOnce(&mut M) -> &mut String,
) -> (Option<RequestId>, Violations) {
    let mut v = Violations::default();
    let mut rest = req.clone();
    let id = std::mem::take(field(&mut rest));
    if id.is_empty() {
        return (None, v);
    }
    check_code(&mut v, "request_id", &id, 128);
    if !v.is_empty() {
        // Reported; an id the database could not hold is never looked up.
        return (None, v);
    }
    (Some(RequestId { id, fingerprint: Sha256::digest(rest.encode_to_vec()).into() }), v)
}

/// `request` (parsed beside `rest`) and `rest`, or every problem of both.
pub fn with_request_id<T>(
    request: (Option<RequestId>, Violations),
    rest: Result<T, Violations>,
) -> Result<(Option<RequestId>, T), Violations> {
    let (id, mut v) = request;
    match rest {
        Ok(value) => v.finish((id, value)),
        Err(more) => {
            v.extend(more);
            Err(v)
        }
    }
}
