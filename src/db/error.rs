//! Errors of the persistence layer, classified by what the caller can do about them.
//!
//! Error types by layer: `db` returns [`DbError`]; `app` returns `AppError` (which wraps
//! `DbError`); `grpc/status.rs` turns `AppError` into a `tonic::Status`, the only place
//! that happens. Raw database messages never leave the process.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Clone, Debug, thiserror::Error)]
pub enum DbError {
    /// A row the query needed does not exist.
    #[error("row not found")]
    NotFound,
    /// A unique constraint rejected the write; the constraint says which key.
    #[error("unique constraint {constraint} violated")]
    UniqueViolation { constraint: String },
    /// A foreign key rejected the write or delete; the constraint says which reference.
    #[error("foreign key {constraint} violated")]
    ForeignKeyViolation { constraint: String },
    /// A check constraint rejected the row: a rule the domain should have caught.
    #[error("check constraint {constraint} violated")]
    CheckViolation { constraint: String },
    /// Serialization failure or deadlock: the transaction may succeed if run again.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// No connection (pool timeout, connection lost, database down).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement ran past the statement timeout.
    #[error("statement timed out")]
    Timeout,
    /// Too much work is already waiting for a connection; nothing was done.
    #[error("too much work is waiting for a database connection")]
    Overloaded,
    /// The caller's deadline passed before the work could start; nothing was done.
    #[error("the caller's deadline passed before the database work started")]
    DeadlineExceeded,
    /// The instance is shutting down: the work was not started, or its transaction was
    /// cancelled and rolled back at the end of the grace period; nothing was written.
    #[error("the instance is shutting down; the work was not done")]
    ShuttingDown,
    /// Anything else: a bug or an unexpected database state.
    #[error("database error: {0}")]
    Other(String),
}

impl DbError {
    /// A violation of `constraint` as a conflict: the key was taken by a concurrent
    /// transaction, and running this one again finds what it stored.
    pub fn retry_if_taken(self, constraint: &str) -> Self {
        match self {
            Self::UniqueViolation { constraint: c } if c == constraint => {
                Self::Conflict(format!("key taken concurrently ({c})"))
            }
            other => other,
        }
    }

    /// Worth running the whole transaction again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// About the database rather than the data: every transaction would fail alike.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Conflict(_) | Self::Unavailable(_) | Self::Timeout | Self::Overloaded | Self::ShuttingDown
        )
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let constraint = info.constraint_name().unwrap_or_default().to_owned();
                let message = info.message();
                match kind {
                    DatabaseErrorKind::UniqueViolation => Self::UniqueViolation { constraint },
                    DatabaseErrorKind::ForeignKeyViolation => Self::ForeignKeyViolation { constraint },
                    DatabaseErrorKind::CheckViolation => Self::CheckViolation { constraint },
                    DatabaseErrorKind::SerializationFailure => Self::Conflict(message.to_owned()),
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                        Self::Unavailable(message.to_owned())
                    }
                    // SQLSTATE would say these (40P01, 57014, 57P01..03), but Diesel 2.3
                    // does not hand it out: `DatabaseErrorInformation` has message,
                    // details, hint, table, column, constraint and position, and the
                    // PostgreSQL backend reads the SQLSTATE only to pick a
                    // `DatabaseErrorKind`, which has no kind for these. PostgreSQL's
                    // messages identify them while `lc_messages` is English (the default,
                    // and only a superuser may change it); in another language they fall
                    // to `Other`, an INTERNAL answer, not a wrong one.
                    _ if message.starts_with("deadlock detected") => Self::Conflict(message.to_owned()),
                    _ if message.contains("statement timeout") => Self::Timeout,
                    _ if message.starts_with("terminating connection")
                        || message.starts_with("the database system is") =>
                    {
                        Self::Unavailable(message.to_owned())
                    }
                    _ => Self::Other(message.to_owned()),
                }
            }
            DieselError::BrokenTransactionManager => Self::Unavailable("broken transaction manager".into()),
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<diesel::ConnectionError> for DbError {
    fn from(e: diesel::ConnectionError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// A name stored in a column, read back with `parse`: one this build does not know is an
/// error, never taken for another.
pub fn stored<T>(what: &str, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, DbError> {
    parse(name).ok_or_else(|| DbError::Other(format!("stored {what} {name:?}")))
}

/// Lets `Db::transaction` see the database error inside an application error, to
/// decide whether a retry can help.
pub trait TxError: From<DbError> + Send + 'static {
    fn as_db_error(&self) -> Option<&DbError>;
}

impl TxError for DbError {
    fn as_db_error(&self) -> Option<&DbError> {
        Some(self)
    }
}
