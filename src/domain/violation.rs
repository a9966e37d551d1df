//! Violations: breaches of limits, commits and commitments, written to the feed in the
//! same transaction as their cause.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{CommitId, CustomerId, ProductId};
use super::seal::{TokenKey, TokenKind};

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
    CommitmentEnded,
    BalanceLow,
    BalanceRecovered,
}

impl ViolationKind {
    pub const ALL: [Self; 11] = [
        Self::LimitWarning,
        Self::LimitBlock,
        Self::ServiceNotIncluded,
        Self::ThresholdCrossed,
        Self::CommitExhausted,
        Self::PostpaidTrueUp,
        Self::CommitmentShortfall,
        Self::EarlyTermination,
        Self::CommitmentEnded,
        Self::BalanceLow,
        Self::BalanceRecovered,
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
            Self::CommitmentEnded => "COMMITMENT_ENDED",
            Self::BalanceLow => "BALANCE_LOW",
            Self::BalanceRecovered => "BALANCE_RECOVERED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The facts of a violation; which are set depends on its kind. Every field is written
/// when serialized, unset ones too: answers stored with events pack them by position
/// (`app::usage::packing`), so a field may only be added last, with a default. The
/// violations table's JSON leaves the unset ones out (`db::violations`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationDetail {
    pub message: String,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub product_id: Option<ProductId>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub measure: Option<String>,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub used: Option<Decimal>,
    #[serde(default)]
    pub limit: Option<Decimal>,
    #[serde(default)]
    pub tolerance_limit: Option<Decimal>,
    #[serde(default)]
    pub threshold_percent: Option<Decimal>,
    #[serde(default)]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub commit_id: Option<CommitId>,
    #[serde(default)]
    pub commitment_id: Option<Uuid>,
    /// For a commitment's end: the next plan its ending config names.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// For balance alerts: the alert.
    #[serde(default)]
    pub alert_id: Option<Uuid>,
    /// For balance alerts: the credit type of the balance.
    #[serde(default)]
    pub credit_type: Option<String>,
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
    /// A violation with the id it will be stored under; ids are made by the caller (the
    /// domain takes them, like time, as inputs).
    pub fn new(
        id: Uuid,
        kind: ViolationKind,
        customer_id: Option<CustomerId>,
        occurred_at: DateTime<Utc>,
        detail: ViolationDetail,
    ) -> Self {
        Self { id, kind, customer_id, occurred_at, detail }
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

/// First byte of a cursor's payload: the format, so a later one can be told apart.
const CURSOR_FORMAT: u8 = 2;

/// The opaque cursor of a feed position (the organization's sequence number), sealed
/// for the organization whose feed it is.
pub fn cursor_of(seq: i64, key: &TokenKey) -> String {
    let mut payload = [0u8; 9];
    payload[0] = CURSOR_FORMAT;
    payload[1..].copy_from_slice(&seq.to_be_bytes());
    key.seal(TokenKind::FeedCursor, &payload)
}

/// Why a cursor cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorError {
    /// A cursor of the first format, issued before cursors were sealed.
    Unsealed,
    /// Not a cursor this service issued to the organization (forged, altered, another
    /// organization's or another deployment's).
    NotIssued,
}

/// The sequence number of a cursor sealed by `key`.
pub fn parse_cursor(cursor: &str, key: &TokenKey) -> Result<i64, CursorError> {
    // Sealed cursors are 34 characters; anything much longer is refused unread.
    if cursor.len() > 64 {
        return Err(CursorError::NotIssued);
    }
    let Some(payload) = key.open(TokenKind::FeedCursor, cursor) else {
        return Err(if is_unsealed_cursor(cursor) { CursorError::Unsealed } else { CursorError::NotIssued });
    };
    match payload.split_first() {
        Some((&CURSOR_FORMAT, seq)) => match <[u8; 8]>::try_from(seq).map(i64::from_be_bytes) {
            Ok(seq) if seq >= 0 => Ok(seq),
            _ => Err(CursorError::NotIssued),
        },
        _ => Err(CursorError::NotIssued),
    }
}

/// Whether `cursor` has the first, unsealed format: `base64url("v1:<seq>")`.
fn is_unsealed_cursor(cursor: &str) -> bool {
    use base64::Engine as _;
    let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor) else { return false };
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.strip_prefix("v1:"))
        .is_some_and(|n| n.parse::<u64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::seal::test_key;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let key = test_key(1);
        assert_eq!(parse_cursor(&cursor_of(42, &key), &key), Ok(42));
        assert_eq!(parse_cursor(&cursor_of(0, &key), &key), Ok(0));
        assert_eq!(cursor_of(i64::MAX, &key).len(), 34);
        for bad in ["", "42", "!!", &"A".repeat(100)] {
            assert_eq!(parse_cursor(bad, &key), Err(CursorError::NotIssued), "{bad:?}");
        }
    }

    #[test]
    fn another_organizations_cursor_is_refused() {
        let theirs = cursor_of(42, &test_key(2));
        assert_eq!(parse_cursor(&theirs, &test_key(1)), Err(CursorError::NotIssued));
    }

    #[test]
    fn a_sealed_payload_that_is_not_a_position_is_refused() {
        let key = test_key(1);
        let mut negative = vec![CURSOR_FORMAT];
        negative.extend_from_slice(&(-1i64).to_be_bytes());
        let other_format = [9u8; 9];
        for payload in [&negative[..], &other_format[..], &[CURSOR_FORMAT][..]] {
            let cursor = key.seal(TokenKind::FeedCursor, payload);
            assert_eq!(parse_cursor(&cursor, &key), Err(CursorError::NotIssued), "{payload:?}");
        }
    }

    #[test]
    fn a_cursor_from_before_sealing_is_named_as_such() {
        // base64url("v1:7"), as cursors were first issued; "v1:-1" was never one.
        assert_eq!(parse_cursor("djE6Nw", &test_key(1)), Err(CursorError::Unsealed));
        assert_eq!(parse_cursor("djE6LTE", &test_key(1)), Err(CursorError::NotIssued));
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
                Uuid::nil(),
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
    fn a_cursor_longer_than_64_characters_is_refused_unread() {
        use base64::Engine as _;
        // Unsealed cursors are read only far enough to name them; past 64 characters
        // nothing is decoded at all.
        let unsealed = |digits: usize| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{:0>digits$}", 5))
        };
        let (longest, longer) = (unsealed(45), unsealed(46));
        assert_eq!((longest.len(), parse_cursor(&longest, &test_key(1))), (64, Err(CursorError::Unsealed)));
        assert_eq!((longer.len(), parse_cursor(&longer, &test_key(1))), (66, Err(CursorError::NotIssued)));
    }

    #[test]
    fn what_follows_a_position_is_retained_from_the_first_kept_violation() {
        let p = FeedPosition { last_seq: 10, retained_from: 6 };
        assert!(p.retains_after(5), "6 is the first kept");
        assert!(p.retains_after(9));
        assert!(!p.retains_after(4), "5 was pruned");
    }
}
