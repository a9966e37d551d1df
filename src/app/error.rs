//! Errors of the use cases, in the caller's terms. `grpc/status.rs` maps each variant
//! to exactly one gRPC code.

use crate::db::{DbError, TxError};
use crate::domain::scope::Scope;
use crate::domain::validation::Violations;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request breaks one or more rules; every bad field is named.
    #[error("invalid request: {0}")]
    Invalid(Violations),
    /// The resource does not exist in the caller's organization.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// A unique key (external id, code, uniqueness key, event id) is taken; `existing`
    /// is the id of the resource holding it, when known, so a caller whose first call
    /// timed out can find what it created.
    #[error("{resource} with this {field} already exists")]
    AlreadyExists { resource: &'static str, field: &'static str, existing: Option<String> },
    /// The caller's etag is not the resource's current one.
    #[error("{resource} was changed since the etag was read")]
    EtagMismatch { resource: &'static str },
    /// The resource is not in a state that allows the call.
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: String },
    /// A position (cursor, time) outside what the service can serve; `reason` says which
    /// side of the range it fell off.
    #[error("{message}")]
    OutOfRange { reason: &'static str, message: String },
    /// A quota or capacity limit was hit; retrying later may work.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The service is past its capacity for this caller now; retrying after
    /// `retry_after` may work.
    #[error("{message}")]
    Overloaded { reason: &'static str, message: String, retry_after: std::time::Duration },
    /// Missing, malformed, unknown or revoked API key.
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// A live key past its expiry.
    #[error("the API key has expired")]
    KeyExpired,
    /// The caller's key lacks `scope`.
    #[error("{message}")]
    MissingScope { scope: Scope, message: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<Violations> for AppError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

impl TxError for AppError {
    fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Self::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl AppError {
    /// PERMISSION_DENIED: the caller's key lacks `scope`.
    pub fn missing_scope(scope: Scope, message: impl Into<String>) -> Self {
        Self::MissingScope { scope, message: message.into() }
    }

    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound { resource, id: id.to_string() }
    }

    /// ALREADY_EXISTS on `field`, naming the resource that holds the key.
    pub fn already_exists(resource: &'static str, field: &'static str, existing: impl ToString) -> Self {
        Self::AlreadyExists { resource, field, existing: Some(existing.to_string()) }
    }

    /// Turns a unique violation of `constraint` into ALREADY_EXISTS on `field`.
    pub fn unique(self, constraint: &str, resource: &'static str, field: &'static str) -> Self {
        match self {
            Self::Db(DbError::UniqueViolation { constraint: c }) if c == constraint => {
                Self::AlreadyExists { resource, field, existing: None }
            }
            other => other,
        }
    }

    /// Turns a foreign key violation (something still refers to the row) into
    /// FAILED_PRECONDITION; the constraint's name is logged, not sent.
    pub fn in_use(self, resource: &'static str) -> Self {
        match self {
            Self::Db(DbError::ForeignKeyViolation { constraint }) => {
                tracing::info!(resource, constraint, "delete refused: still referenced");
                Self::FailedPrecondition {
                    reason: "RESOURCE_IN_USE",
                    message: format!("{resource} is still referenced by other resources"),
                }
            }
            other => other,
        }
    }
}
