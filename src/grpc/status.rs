//! The one place errors become `tonic::Status`, with google.rpc details: an `ErrorInfo`
//! whose reason is UPPER_SNAKE_CASE on every error, a `BadRequest` naming each bad field
//! on INVALID_ARGUMENT, a `ResourceInfo` on NOT_FOUND. Internal details are logged, never
//! sent: the caller sees a generic message and the log has the cause.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::app::AppError;
use crate::db::DbError;
use crate::domain::validation::Violations;
use crate::feed::StreamEnd;

/// `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "billing.commitments.v1";

fn status(code: Code, reason: &str, message: impl Into<String>, details: ErrorDetails) -> Status {
    status_with(code, reason, HashMap::new(), message, details)
}

/// [`status`] whose `ErrorInfo` carries `metadata`.
fn status_with(
    code: Code,
    reason: &str,
    metadata: HashMap<String, String>,
    message: impl Into<String>,
    mut details: ErrorDetails,
) -> Status {
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// Most field violations reported, and longest text of each: the status travels in
/// HTTP/2 headers, which peers cap (16 KiB by default), and a hostile request must not
/// turn into a response its caller cannot even read.
const MAX_REPORTED_VIOLATIONS: usize = 50;
const MAX_VIOLATION_TEXT: usize = 200;
/// Violations spelled out in the status message; the details carry the rest.
const VIOLATIONS_IN_MESSAGE: usize = 5;

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_VIOLATION_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn invalid(v: &Violations) -> Status {
    let mut details = ErrorDetails::new();
    let items = v.items();
    for item in items.iter().take(MAX_REPORTED_VIOLATIONS) {
        details.add_bad_request_violation(bounded(&item.field), bounded(&item.description));
    }
    let mut message = String::from("invalid request: ");
    for (i, item) in items.iter().take(VIOLATIONS_IN_MESSAGE).enumerate() {
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(&format!("{}: {}", bounded(&item.field), bounded(&item.description)));
    }
    if items.len() > VIOLATIONS_IN_MESSAGE {
        message.push_str(&format!("; and {} more", items.len() - VIOLATIONS_IN_MESSAGE));
    }
    status(Code::InvalidArgument, "INVALID_ARGUMENT", message, details)
}

fn from_db(e: DbError) -> Status {
    match e {
        DbError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "database unavailable");
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(1)));
            status(Code::Unavailable, "DATABASE_UNAVAILABLE", "database unavailable, retry later", details)
        }
        DbError::Timeout => {
            tracing::warn!("statement timed out");
            status(
                Code::Unavailable,
                "DATABASE_TIMEOUT",
                "database did not answer in time, retry later",
                ErrorDetails::new(),
            )
        }
        DbError::Conflict(cause) => {
            tracing::info!(error = %cause, "transaction conflict after retries");
            status(
                Code::Aborted,
                "TRANSACTION_CONFLICT",
                "conflicting concurrent change, retry the call",
                ErrorDetails::new(),
            )
        }
        DbError::NotFound => status(Code::NotFound, "NOT_FOUND", "not found", ErrorDetails::new()),
        DbError::Overloaded => {
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_millis(100)));
            status(
                Code::Unavailable,
                "OVERLOADED",
                "too many calls are waiting for the database; retry shortly",
                details,
            )
        }
        DbError::ShuttingDown => {
            // Another instance can take the call at once: nothing of it was written.
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::ZERO));
            status(
                Code::Unavailable,
                "SHUTTING_DOWN",
                "the instance is shutting down; nothing was changed, retry the call",
                details,
            )
        }
        DbError::DeadlineExceeded => status(
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
            "the call's deadline passed before its work started; nothing was changed",
            ErrorDetails::new(),
        ),
        // A constraint the use case did not translate, or anything unexpected: a rule the
        // domain should have caught, or a bug. The cause is logged, never sent.
        internal @ (DbError::UniqueViolation { .. }
        | DbError::ForeignKeyViolation { .. }
        | DbError::CheckViolation { .. }
        | DbError::Other(_)) => {
            tracing::error!(error = %internal, "internal error");
            status(Code::Internal, "INTERNAL", "internal error", ErrorDetails::new())
        }
    }
}

impl From<AppError> for Status {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(v) => invalid(&v),
            AppError::NotFound { resource, id } => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(resource, id.clone(), "", "not found");
                status(Code::NotFound, "NOT_FOUND", format!("{resource} {id} not found"), details)
            }
            AppError::AlreadyExists { resource, field, existing } => {
                let mut details = ErrorDetails::new();
                let existing = existing.unwrap_or_default();
                details.set_resource_info(resource, existing.clone(), "", format!("{field} already in use"));
                let message = match existing.as_str() {
                    "" => format!("a {resource} with this {field} already exists"),
                    id => format!("a {resource} with this {field} already exists: {id}"),
                };
                status(Code::AlreadyExists, "ALREADY_EXISTS", message, details)
            }
            AppError::EtagMismatch { resource } => status(
                Code::Aborted,
                "ETAG_MISMATCH",
                format!("the {resource} changed since its etag was read; read it again and retry"),
                ErrorDetails::new(),
            ),
            AppError::FailedPrecondition { reason, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(reason, "", message.clone());
                status(Code::FailedPrecondition, reason, message, details)
            }
            AppError::OutOfRange { reason, message } => {
                status(Code::OutOfRange, reason, message, ErrorDetails::new())
            }
            AppError::ResourceExhausted(message) => {
                status(Code::ResourceExhausted, "RESOURCE_EXHAUSTED", message, ErrorDetails::new())
            }
            AppError::Overloaded { reason, message, retry_after } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                status(Code::ResourceExhausted, reason, message, details)
            }
            AppError::Unauthenticated => unauthenticated(),
            AppError::KeyExpired => status(
                Code::Unauthenticated,
                "API_KEY_EXPIRED",
                "the API key has expired; ask an admin for a new one",
                ErrorDetails::new(),
            ),
            AppError::MissingScope { scope, message } => status_with(
                Code::PermissionDenied,
                "MISSING_SCOPE",
                HashMap::from([("scope".to_owned(), scope.as_str().to_owned())]),
                message,
                ErrorDetails::new(),
            ),
            AppError::Db(e) => from_db(e),
        }
    }
}

/// The status a violation stream ends with; every end tells the reader to resume from
/// its last cursor, or why it cannot.
impl From<StreamEnd> for Status {
    fn from(why: StreamEnd) -> Self {
        let (code, reason, message) = match why {
            StreamEnd::Shutdown => (
                Code::Unavailable,
                "SHUTTING_DOWN",
                "the server is shutting down; resume from your last cursor",
            ),
            StreamEnd::NotRetained => (
                Code::OutOfRange,
                "CURSOR_NOT_RETAINED",
                "violations after your position were pruned while you lagged",
            ),
            StreamEnd::KeyRevoked => (
                Code::Unauthenticated,
                "API_KEY_REVOKED",
                "the API key this stream was opened with was revoked",
            ),
            StreamEnd::KeyExpired => (
                Code::Unauthenticated,
                "API_KEY_EXPIRED",
                "the API key this stream was opened with has expired",
            ),
            StreamEnd::Unavailable(cause) => {
                tracing::warn!(error = %cause, "violation stream failed");
                (
                    Code::Unavailable,
                    "DATABASE_UNAVAILABLE",
                    "the feed could not be read; resume from your last cursor",
                )
            }
            StreamEnd::Interrupted => {
                tracing::error!("a violation stream's task ended without a reason");
                (
                    Code::Unavailable,
                    "STREAM_INTERRUPTED",
                    "the stream was interrupted; resume from your last cursor",
                )
            }
        };
        status(code, reason, message, ErrorDetails::new())
    }
}

impl From<Violations> for Status {
    fn from(v: Violations) -> Self {
        invalid(&v)
    }
}

/// The answer to a request larger than the message size limit; `sizes` is the decoder's
/// account of them.
pub fn message_too_large(sizes: &str) -> Status {
    status(
        Code::ResourceExhausted,
        "MESSAGE_TOO_LARGE",
        format!("the request is larger than this server accepts: {sizes}"),
        ErrorDetails::new(),
    )
}

/// The answer to a call without a valid API key.
pub fn unauthenticated() -> Status {
    status(
        Code::Unauthenticated,
        "UNAUTHENTICATED",
        "send a valid API key as `authorization: Bearer <key>`",
        ErrorDetails::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_every_field() {
        let mut v = Violations::at("customer");
        v.add("name", "must not be empty");
        v.add("time_zone", "bad");
        let s = Status::from(AppError::Invalid(v));
        assert_eq!(s.code(), Code::InvalidArgument);
        let details = s.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["customer.name", "customer.time_zone"]);
        assert_eq!(details.error_info().expect("info").reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn a_flood_of_violations_is_reported_within_bounds() {
        let mut v = Violations::at("commit");
        let long = "k".repeat(20_000);
        for i in 0..500 {
            v.add(format!("custom_fields[{long}{i}]"), "is too long");
        }
        let s = Status::from(AppError::Invalid(v));
        let details = s.get_error_details();
        let reported = details.bad_request().expect("bad request").field_violations.clone();
        assert_eq!(reported.len(), MAX_REPORTED_VIOLATIONS);
        assert!(reported.iter().all(|f| f.field.chars().count() <= MAX_VIOLATION_TEXT + 1));
        assert!(s.message().len() < 2_000 && s.message().ends_with("and 495 more"), "{}", s.message());
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let s = Status::from(AppError::Db(DbError::Other("relation \"secret_table\" does not exist".into())));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret_table"));
    }

    #[test]
    fn lost_database_is_unavailable() {
        let s = Status::from(AppError::Db(DbError::Unavailable("connection refused".into())));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("refused"));
    }

    #[test]
    fn a_delete_refused_by_a_reference_does_not_name_the_constraint() {
        let refused = AppError::Db(DbError::ForeignKeyViolation { constraint: "commits_product_fk".into() });
        let s = Status::from(refused.in_use("product"));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.get_error_details().error_info().expect("info").reason, "RESOURCE_IN_USE");
        assert!(!s.message().contains("commits_product_fk"), "{}", s.message());
    }

    #[test]
    fn a_stream_whose_task_vanished_ends_unavailable_with_its_own_reason() {
        let s = Status::from(StreamEnd::Interrupted);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.get_error_details().error_info().expect("info").reason, "STREAM_INTERRUPTED");
    }

    #[test]
    fn stale_etag_is_aborted() {
        let s = Status::from(AppError::EtagMismatch { resource: "customer" });
        assert_eq!(s.code(), Code::Aborted);
    }
}
