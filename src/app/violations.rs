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

    /// Deletes, in every org, violations recorded before `cutoff`. Returns how many.
    pub async fn prune_violations(&self, cutoff: DateTime<Utc>) -> Result<usize, AppError> {
        let orgs = self.db().run(db::violations::orgs_with_feeds).await?;
        let mut pruned = 0;
        for org in orgs {
            pruned += self
                .db()
                .transaction(org, move |conn| Ok::<_, AppError>(db::violations::prune(conn, org, cutoff)?))
                .await?;
        }
        Ok(pruned)
    }
}

fn check_customer(conn: &mut db::Conn, org: OrgId, filter: &ViolationFilter) -> Result<(), AppError> {
    match filter.customer_id {
        Some(c) => require_customer(conn, org, c),
        None => Ok(()),
    }
}
