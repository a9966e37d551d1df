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
pub mod policy;
pub mod products;
pub mod promos;
pub mod segments;
pub mod tenancy;
pub mod usage;
pub mod usage_batcher;
pub mod violations;

pub use error::AppError;
pub use policy::Policy;
pub use tenancy::Caller;

use crate::db::Db;

/// The application: shared by every gRPC service, cheap to clone.
#[derive(Clone)]
pub struct App {
    db: Db,
    policy: Policy,
}

impl App {
    /// The application over `db` with the default policy.
    pub fn new(db: Db) -> Self {
        Self { db, policy: Policy::default() }
    }

    /// The same application under `policy`.
    pub fn with_policy(self, policy: Policy) -> Self {
        Self { policy, ..self }
    }

    /// The operator-tuned rules in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The database handle, for health checks and operational tasks.
    pub fn db(&self) -> &Db {
        &self.db
    }
}
