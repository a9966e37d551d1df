//! Use cases: each opens one transaction through `db`, asks `domain` to decide, writes
//! the result and commits. Nothing here knows about gRPC.

pub mod allowances;
pub mod clock;
pub mod commitments;
pub mod commits;
pub mod credit;
pub mod customers;
pub mod drawdowns;
pub mod error;
pub mod products;
pub mod promos;
pub mod segments;
pub mod tenancy;
pub mod usage;
pub mod usage_batcher;
pub mod violations;

pub use error::AppError;
pub use tenancy::Caller;

use crate::db::Db;

/// The application: shared by every gRPC service, cheap to clone.
#[derive(Clone)]
pub struct App {
    db: Db,
}

impl App {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database handle, for health checks and operational tasks.
    pub fn db(&self) -> &Db {
        &self.db
    }
}
