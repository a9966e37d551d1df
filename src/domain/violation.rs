//! Violations: breaches of limits, commits and commitments, written to the feed in the
//! same transaction as their cause.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{CommitId, CustomerId, ProductId};

/// What a violation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViolationKind {
    LimitWarning,
    LimitBlock,
    ServiceNotIncluded,
    ThresholdCrossed,
    CommitExhausted,
    PostpaidTrueUp,
    CommitmentShortfall,
    EarlyTermination,
}

impl ViolationKind {
    pub const ALL: [Self; 8] = [
        Self::LimitWarning,
        Self::LimitBlock,
        Self::ServiceNotIncluded,
        Self::ThresholdCrossed,
        Self::CommitExhausted,
        Self::PostpaidTrueUp,
        Self::CommitmentShortfall,
        Self::EarlyTermination,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LimitWarning => "LIMIT_WARNING",
            Self::LimitBlock => "LIMIT_BLOCK",
            Self::ServiceNotIncluded => "SERVICE_NOT_INCLUDED",
            Self::ThresholdCrossed => "THRESHOLD_CROSSED",
            Self::CommitExhausted => "COMMIT_EXHAUSTED",
            Self::PostpaidTrueUp => "POSTPAID_TRUE_UP",
            Self::CommitmentShortfall => "COMMITMENT_SHORTFALL",
            Self::EarlyTermination => "EARLY_TERMINATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The facts of a violation; which are set depends on its kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationDetail {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_limit: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_id: Option<Uuid>,
    #[serde(default)]
    pub blocked: bool,
}

/// A violation about to be written (its sequence number is given at write time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewViolation {
    pub id: Uuid,
    pub kind: ViolationKind,
    pub customer_id: Option<CustomerId>,
    pub occurred_at: DateTime<Utc>,
    pub detail: ViolationDetail,
}

impl NewViolation {
    pub fn new(
        kind: ViolationKind,
        customer_id: Option<CustomerId>,
        occurred_at: DateTime<Utc>,
        detail: ViolationDetail,
    ) -> Self {
        Self { id: Uuid::now_v7(), kind, customer_id, occurred_at, detail }
    }
}

/// A violation as stored in the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub seq: i64,
    pub recorded_at: DateTime<Utc>,
    pub violation: NewViolation,
}

/// Most `kinds` values a filter may carry (there are far fewer kinds; the bound keeps a
/// hostile filter from costing a query parameter per value).
pub const MAX_KIND_FILTERS: usize = 64;

/// Which violations a reader wants; empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViolationFilter {
    pub customer_id: Option<CustomerId>,
    pub kinds: Vec<ViolationKind>,
}

impl ViolationFilter {
    pub fn matches(&self, v: &Violation) -> bool {
        self.customer_id.is_none_or(|c| v.violation.customer_id == Some(c))
            && (self.kinds.is_empty() || self.kinds.contains(&v.violation.kind))
    }
}

/// Where an organization's feed stands: the last sequence number written, and the first
/// one still retained (older ones were pruned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedPosition {
    pub last_seq: i64,
    pub retained_from: i64,
}

impl Default for FeedPosition {
    fn default() -> Self {
        Self { last_seq: 0, retained_from: 1 }
    }
}

/// Where a reader asks to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// After the violation with this sequence number.
    After(i64),
    Now,
    Beginning,
}

/// Why a start position cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The violations right after it were pruned.
    NotRetained,
    /// It is beyond the last violation written (a cursor of another feed).
    Ahead,
}

impl FeedPosition {
    /// The sequence number a reader starting at `start` has already seen.
    pub fn resolve(&self, start: StartAt) -> Result<i64, StartError> {
        match start {
            StartAt::Now => Ok(self.last_seq),
            StartAt::Beginning => Ok(self.retained_from - 1),
            StartAt::After(seq) if seq > self.last_seq => Err(StartError::Ahead),
            StartAt::After(seq) if seq + 1 < self.retained_from => Err(StartError::NotRetained),
            StartAt::After(seq) => Ok(seq),
        }
    }

    /// True when a reader that has seen up to `seen` can still read what follows.
    pub fn retains_after(&self, seen: i64) -> bool {
        seen + 1 >= self.retained_from
    }
}

/// The opaque cursor of a feed position (the organization's sequence number).
pub fn cursor_of(seq: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{seq}"))
}

/// The sequence number of a cursor; `None` when it is not one this service issued.
pub fn parse_cursor(cursor: &str) -> Option<i64> {
    use base64::Engine as _;
    if cursor.len() > 64 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let seq: i64 = std::str::from_utf8(&raw).ok()?.strip_prefix("v1:")?.parse().ok()?;
    (seq >= 0).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_cursor(&cursor_of(42)), Some(42));
        assert_eq!(parse_cursor(&cursor_of(0)), Some(0));
        for bad in ["", "42", "djE6LTE", "!!", &"A".repeat(100)] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn start_positions_resolve_against_the_feed() {
        let p = FeedPosition { last_seq: 10, retained_from: 4 };
        assert_eq!(p.resolve(StartAt::Now), Ok(10));
        assert_eq!(p.resolve(StartAt::Beginning), Ok(3));
        assert_eq!(p.resolve(StartAt::After(3)), Ok(3), "the next one, 4, is retained");
        assert_eq!(p.resolve(StartAt::After(2)), Err(StartError::NotRetained), "3 was pruned");
        assert_eq!(p.resolve(StartAt::After(10)), Ok(10));
        assert_eq!(p.resolve(StartAt::After(11)), Err(StartError::Ahead));
        assert_eq!(FeedPosition::default().resolve(StartAt::Beginning), Ok(0));
    }

    #[test]
    fn filter_matches_customer_and_kinds() {
        let c = CustomerId::generate();
        let v = Violation {
            seq: 1,
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            violation: NewViolation::new(
                ViolationKind::LimitBlock,
                Some(c),
                DateTime::<Utc>::UNIX_EPOCH,
                ViolationDetail::default(),
            ),
        };
        assert!(ViolationFilter::default().matches(&v));
        assert!(ViolationFilter { customer_id: Some(c), kinds: vec![ViolationKind::LimitBlock] }.matches(&v));
        assert!(!ViolationFilter { customer_id: Some(CustomerId::generate()), kinds: vec![] }.matches(&v));
        assert!(!ViolationFilter { customer_id: None, kinds: vec![ViolationKind::LimitWarning] }.matches(&v));
    }

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in ViolationKind::ALL {
            assert_eq!(ViolationKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_cursor_of_up_to_64_characters_is_read_and_a_longer_one_is_refused_unread() {
        use base64::Engine as _;
        let encode = |digits: usize| {
            let raw = format!("v1:{:0>digits$}", 5);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        };
        let longest = encode(45);
        assert_eq!((longest.len(), parse_cursor(&longest)), (64, Some(5)));
        let longer = encode(46);
        assert_eq!((longer.len(), parse_cursor(&longer)), (66, None));
    }

    #[test]
    fn what_follows_a_position_is_retained_from_the_first_kept_violation() {
        let p = FeedPosition { last_seq: 10, retained_from: 6 };
        assert!(p.retains_after(5), "6 is the first kept");
        assert!(p.retains_after(9));
        assert!(!p.retains_after(4), "5 was pruned");
    }
}
