//! The API key a call is made with, carried to the database work done for it: every
//! transaction sets it as `app.key_id`, and a trigger on each resource table records it
//! as `created_by` / `updated_by` (migration `2026-12-02-001600_written_by`), so no write
//! path, present or future, can forget to say who made a change.
//!
//! The auth layer sets it for the whole handling of a call; `Db` reads it on the calling
//! task, like the deadline (`db::deadline`). Work the service does on its own (jobs,
//! shared usage transactions) runs without one, and leaves `updated_by` as it was.

use std::future::Future;

use crate::domain::ids::ApiKeyId;

tokio::task_local! {
    static ACTING_KEY: ApiKeyId;
}

/// Runs `f` with `key` as the key its database work is done for.
pub async fn acting_as<F: Future>(key: ApiKeyId, f: F) -> F::Output {
    ACTING_KEY.scope(key, f).await
}

/// The key of the current task's work, if it has one.
pub fn current() -> Option<ApiKeyId> {
    ACTING_KEY.try_with(|k| *k).ok()
}
