//! Reading the violation feed: pages of history, feed positions, pruning.

use chrono::{DateTime, Utc};

use super::customers::require_customer;
use super::{App, AppError};
use crate::db;
use crate::domain::ids::OrgId;
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::Violations;
use crate::domain::violation::{FeedPosition, StartAt, StartError, Violation, ViolationFilter};

impl From<StartError> for AppError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::NotRetained => AppError::OutOfRange {
                reason: "CURSOR_NOT_RETAINED",
                message: "the violations after this cursor are no longer retained".into(),
            },
            StartError::Ahead => AppError::OutOfRange {
                reason: "CURSOR_AHEAD",
                message: "this cursor is ahead of the organization's feed".into(),
            },
        }
    }
}

impl App {
    /// One page of the org's violations from `start` (or the page token's position),
    /// oldest first. OUT_OF_RANGE when violations right after that position were pruned
    /// (the page would silently skip them) or it is ahead of the feed.
    pub async fn list_violations(
        &self,
        org: OrgId,
        filter: ViolationFilter,
        start: StartAt,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Violation>, AppError> {
        let start = match page.after.as_deref() {
            None => start,
            Some(p) => StartAt::After(
                p.parse::<i64>()
                    .map_err(|_| Violations::single("page_token", "was issued for another list"))?,
            ),
        };
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                self::check_customer(conn, org, &filter)?;
                let after = db::violations::position(conn, org)?.resolve(start)?;
                Ok::<_, AppError>(db::violations::page(conn, org, &filter, after, None, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |v| v.seq.to_string()))
    }

    /// Where the org's feed stands; NOT_FOUND when the filter names an unknown customer.
    pub async fn feed_position(&self, org: OrgId, filter: ViolationFilter) -> Result<FeedPosition, AppError> {
        self.db()
            .transaction(org, move |conn| {
                check_customer(conn, org, &filter)?;
                Ok(db::violations::position(conn, org)?)
            })
            .await
    }

    /// Up to `limit` violations with `after < seq <= up_to` matching `filter`, and where
    /// the feed stands now.
    pub async fn violations_between(
        &self,
        org: OrgId,
        filter: ViolationFilter,
        after: i64,
        up_to: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<Violation>, FeedPosition), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let position = db::violations::position(conn, org)?;
                let rows = db::violations::page(conn, org, &filter, after, up_to, limit)?;
                Ok::<_, AppError>((rows, position))
            })
            .await
    }

    /// Where the feeds of `orgs` stand.
    pub async fn feed_positions(&self, orgs: Vec<OrgId>) -> Result<Vec<(OrgId, FeedPosition)>, AppError> {
        Ok(self.db().run(move |conn| db::violations::positions(conn, &orgs)).await?)
    }

    /// Retention of the feed: in every org, the violations recorded before `cutoff` leave
    /// the feed; then the months wholly behind every feed are dropped.
    pub async fn prune_violations(&self, cutoff: DateTime<Utc>) -> Result<Pruned, AppError> {
        let orgs = self.db().run(db::violations::orgs_with_feeds).await?;
        let mut violations = 0;
        for org in orgs {
            violations += self
                .db()
                .transaction(org, move |conn| Ok::<_, AppError>(db::violations::prune(conn, org, cutoff)?))
                .await?;
        }
        let months_dropped = self.db().run(move |conn| db::violations::drop_expired(conn, cutoff)).await?;
        Ok(Pruned { violations, months_dropped })
    }
}

/// What one run of the feed's retention did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Violations that left the feed.
    pub violations: usize,
    /// Monthly partitions dropped, by name.
    pub months_dropped: Vec<String>,
}

fn check_customer(conn: &mut db::Conn, org: OrgId, filter: &ViolationFilter) -> Result<(), AppError> {
    match filter.customer_id {
        Some(c) => require_customer(conn, org, c),
        None => Ok(()),
    }
}
