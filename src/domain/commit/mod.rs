//! Commits (seed 004, Metronome's customer commits): an amount of credit granted over
//! access segments and drawn down by the customer's applicable usage.

pub mod adjustment;
pub mod applicability;
pub mod balance;
pub mod schedule;
pub mod timeline;
pub mod validate;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authorship::Authorship;
use super::ids::{ApiKeyId, CommitId, CustomerId, ProductId};

pub use applicability::{Applicability, Exclusion, Specifier};
pub use schedule::{
    ChargeAmount, Distribution, Frequency, InvoiceCharge, InvoiceItem, InvoiceSchedule, RecurringSchedule,
};

/// Paid before use, or trued up after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitType {
    Prepaid,
    Postpaid,
}

impl CommitType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepaid => "PREPAID",
            Self::Postpaid => "POSTPAID",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PREPAID" => Some(Self::Prepaid),
            "POSTPAID" => Some(Self::Postpaid),
            _ => None,
        }
    }
}

/// One access segment: `amount` usable in `[starting_at, ending_before)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessItem {
    pub amount: Decimal,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
}

impl AccessItem {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.starting_at <= t && t < self.ending_before
    }
}

/// A commit as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub id: CommitId,
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    pub commit_type: CommitType,
    pub priority: Decimal,
    pub credit_type: String,
    pub access: Vec<AccessItem>,
    pub invoice_schedule: Option<InvoiceSchedule>,
    pub applicability: Applicability,
    pub custom_fields: BTreeMap<String, String>,
    pub rate_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub invoice_contract_id: Option<Uuid>,
    pub netsuite_sales_order_id: Option<String>,
    pub salesforce_opportunity_id: Option<String>,
    pub uniqueness_key: Option<String>,
    pub voided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub by: Authorship,
}

/// A valid new commit (what `validate::validate_new` produces): `Commit`'s fields
/// without what storing adds (id, void, times, version, authorship). Kept flat rather
/// than nested in `Commit`, which every reader uses as `commit.customer_id`;
/// `Commit::create` takes it apart whole, so the two cannot drift apart silently.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCommit {
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    pub commit_type: CommitType,
    pub priority: Decimal,
    pub credit_type: String,
    pub access: Vec<AccessItem>,
    pub invoice_schedule: Option<InvoiceSchedule>,
    pub applicability: Applicability,
    pub custom_fields: BTreeMap<String, String>,
    pub rate_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub invoice_contract_id: Option<Uuid>,
    pub netsuite_sales_order_id: Option<String>,
    pub salesforce_opportunity_id: Option<String>,
    pub uniqueness_key: Option<String>,
}

impl Commit {
    /// This commit voided at `now` by `key`: one version later, taking no more usage.
    pub fn voided(&self, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            voided_at: Some(now),
            by: self.by.changed(key),
            version: self.version + 1,
            updated_at: now,
            ..self.clone()
        }
    }

    /// The commit `new` describes, created at `now` with `key`. `new` is taken apart
    /// whole, so a field added to `NewCommit` and not carried here does not compile.
    pub fn create(id: CommitId, new: NewCommit, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        let NewCommit {
            customer_id,
            product_id,
            commit_type,
            priority,
            credit_type,
            access,
            invoice_schedule,
            applicability,
            custom_fields,
            rate_type,
            name,
            description,
            invoice_contract_id,
            netsuite_sales_order_id,
            salesforce_opportunity_id,
            uniqueness_key,
        } = new;
        Self {
            id,
            customer_id,
            product_id,
            commit_type,
            priority,
            credit_type,
            access,
            invoice_schedule,
            applicability,
            custom_fields,
            rate_type,
            name,
            description,
            invoice_contract_id,
            netsuite_sales_order_id,
            salesforce_opportunity_id,
            uniqueness_key,
            voided_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            by: Authorship::created(key),
        }
    }

    /// End of the access schedule: the latest `ending_before`.
    pub fn access_end(&self) -> Option<DateTime<Utc>> {
        self.access.iter().map(|a| a.ending_before).max()
    }

    /// The invoice schedule expanded into dated charges (empty without a schedule).
    pub fn invoice_charges(&self) -> Vec<InvoiceCharge> {
        self.invoice_schedule.as_ref().map(InvoiceSchedule::expand).unwrap_or_default()
    }
}

/// Valid changes to a commit after creation; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitChanges {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub custom_fields: Option<BTreeMap<String, String>>,
    pub priority: Option<Decimal>,
    /// New end of the last access segment.
    pub access_end: Option<DateTime<Utc>>,
}

/// Filters of a commit listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct CommitFilter {
    pub customer_id: Option<CustomerId>,
    pub commit_type: Option<CommitType>,
    pub active_at: Option<DateTime<Utc>>,
}

/// Fields UpdateCommit may change, as named in its update mask.
pub const MUTABLE_FIELDS: [&str; 5] = ["name", "description", "custom_fields", "priority", "access_end_time"];

/// Applies `changes` to commit `c` (whose segments are `segments`) at `now`: the commit
/// one version later, and the new end of its last segment if that changes.
/// `last_drawdown` is when the latest drawdown of that last segment takes effect: its
/// end may not move to or before it (the drawdown would fall outside the segment).
/// Problems are reported as violations of the update request's fields.
pub fn apply_changes(
    c: &Commit,
    segments: &[balance::Segment],
    changes: CommitChanges,
    (now, last_drawdown): (DateTime<Utc>, Option<DateTime<Utc>>),
    v: &mut super::validation::Violations,
) -> (Commit, Option<(i32, DateTime<Utc>)>) {
    let mut next = c.clone();
    if let Some(name) = changes.name {
        next.name = name;
    }
    if let Some(description) = changes.description {
        next.description = description;
    }
    if let Some(custom_fields) = changes.custom_fields {
        next.custom_fields = custom_fields;
    }
    if let Some(priority) = changes.priority {
        next.priority = priority;
    }
    let mut new_end = None;
    if let Some(end) = changes.access_end {
        match segments.iter().max_by_key(|s| (s.ending_before, s.idx)) {
            Some(last) if last.closed.is_some() || last.ending_before <= now => {
                v.add("access_end_time", "the last access segment has already ended");
            }
            Some(last) if end <= last.starting_at => {
                v.add("access_end_time", "must be after the last segment's start")
            }
            Some(_) if end <= now => v.add("access_end_time", "must be in the future"),
            Some(_) if last_drawdown.is_some_and(|d| end <= d) => v.add(
                "access_end_time",
                "must be after the last drawdown already recorded on the segment; it cannot move before usage",
            ),
            Some(last) => {
                if let Some(item) = next.access.get_mut(last.idx as usize) {
                    item.ending_before = end;
                }
                new_end = Some((last.idx, end));
            }
            None => v.add("access_end_time", "the commit has no access segment"),
        }
    }
    next.version += 1;
    next.updated_at = now;
    (next, new_end)
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod changes_tests;
