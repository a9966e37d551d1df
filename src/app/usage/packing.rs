//! The answers stored with events (and reservations) for their replays: packed as
//! LZ4-compressed MessagePack, or JSON from before packing.

use super::*;

/// First byte of a packed answer: how the rest is encoded. 1 = MessagePack with field
/// names, LZ4-compressed (written until 2026-12-04; still read).
const PACKED_V1: u8 = 1;

/// 2 = MessagePack with each struct as an array of its fields in declaration order,
/// LZ4-compressed: the field names repeated in every limit check were half of a named
/// answer's bytes, compressed or not (docs/performance.md). Read back by position, so
/// the packed types (`UsageOutcome` and what it holds, the reservations' answers) keep
/// their fields in order: a field is only ever added last, with `#[serde(default)]` so
/// answers packed before it still read; none is removed, reordered or skipped when
/// empty. `a_packed_answer_keeps_its_fields_by_position` holds an answer packed in this
/// form to its bytes.
const PACKED_V2: u8 = 2;

/// Packs an answer for storage with the event.
pub fn pack_outcome(outcome: &UsageOutcome) -> Result<Vec<u8>, AppError> {
    pack(outcome)
}

/// Reads an answer written by [`pack_outcome`].
pub fn unpack_outcome(packed: &[u8]) -> Result<UsageOutcome, String> {
    unpack(packed)
}

/// Packs a first answer (of an event, a reservation) for its replays.
pub(in crate::app) fn pack<T: Serialize>(answer: &T) -> Result<Vec<u8>, AppError> {
    let fields = rmp_serde::to_vec(answer).map_err(|e| DbError::Other(format!("packing an answer: {e}")))?;
    Ok(framed(PACKED_V2, &fields))
}

/// `encoded` LZ4-compressed behind its format's byte: the stored form of every format.
fn framed(format: u8, encoded: &[u8]) -> Vec<u8> {
    let mut packed = vec![format];
    packed.extend(lz4_flex::compress_prepend_size(encoded));
    packed
}

/// Reads an answer written by [`pack`].
pub(in crate::app) fn unpack<T: serde::de::DeserializeOwned>(packed: &[u8]) -> Result<T, String> {
    match packed.split_first() {
        // MessagePack's reader takes a struct as a map by name or an array by position.
        Some((&(PACKED_V1 | PACKED_V2), compressed)) => {
            let packed = lz4_flex::decompress_size_prepended(compressed).map_err(|e| e.to_string())?;
            rmp_serde::from_slice(&packed).map_err(|e| e.to_string())
        }
        Some((format, _)) => Err(format!("unknown packed answer format {format}")),
        None => Err("empty packed answer".to_owned()),
    }
}

/// The answer stored with an event, packed or (recorded before packing) JSON.
pub(crate) fn stored_outcome(answer: &StoredAnswer) -> Result<UsageOutcome, AppError> {
    let decoded = match answer {
        StoredAnswer::Packed(bytes) => unpack_outcome(bytes),
        StoredAnswer::Json(value) => UsageOutcome::deserialize(value).map_err(|e| e.to_string()),
    };
    decoded.map_err(|e| DbError::Other(format!("stored usage outcome: {e}")).into())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::domain::allowance::{Measure, Period};
    use crate::domain::limits::{LimitCheck, Outcome};
    use crate::domain::reservation::{Amounts, Grant, HoldAnswer};
    use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};
    use crate::domain::windows::{Window, WindowKind};

    /// A blocked event's answer: two limit checks, a draw, a violation with some of its
    /// detail set.
    fn blocked_answer() -> UsageOutcome {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0).unwrap();
        let day = Window {
            kind: WindowKind::Day,
            first_day: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            start: Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap(),
        };
        let check = |scope: &str, period, window, used: i64, outcome| LimitCheck {
            scope: scope.to_owned(),
            measure: Measure::RatedAmount,
            period,
            window,
            used: Decimal::new(used, 1),
            maximum: Decimal::new(100, 0),
            tolerance_maximum: Decimal::new(110, 0),
            outcome,
        };
        let detail = ViolationDetail {
            message: "daily rated amount over its limit".to_owned(),
            event_id: Some("e2".to_owned()),
            scope: Some("customer".to_owned()),
            used: Some(Decimal::new(1105, 1)),
            limit: Some(Decimal::new(100, 0)),
            blocked: true,
            ..ViolationDetail::default()
        };
        let id = Uuid::from_u128(0x0193_8a6e_7c00_7000_8000_0000_0000_0001);
        UsageOutcome {
            event_id: "e2".to_owned(),
            decision: Decision::Blocked,
            checks: vec![
                check("customer", Period::Transaction, None, 505, Outcome::Within),
                check("customer", Period::Day, Some(day), 1105, Outcome::Exceeded),
            ],
            service_not_included: false,
            draws: vec![DrawRecord {
                commit_id: Some(id),
                segment_idx: 0,
                applied_promotion_id: None,
                amount: Decimal::new(505, 1),
                remaining_after: Decimal::new(495, 1),
            }],
            overage: Decimal::ZERO,
            violations: vec![ReportedViolation {
                seq: Some(7),
                recorded_at: Some(at),
                violation: NewViolation::new(id, ViolationKind::LimitBlock, None, at, detail),
            }],
            replayed: false,
        }
    }

    #[test]
    fn an_answer_packed_by_field_name_before_v2_still_reads_the_same() {
        let answer = blocked_answer();
        let v1 = framed(PACKED_V1, &rmp_serde::to_vec_named(&answer).unwrap());
        assert_eq!(unpack_outcome(&v1).unwrap(), answer);
        let v2 = pack_outcome(&answer).unwrap();
        assert_eq!(unpack_outcome(&v2).unwrap(), answer);
        assert!(v2.len() * 10 < v1.len() * 7, "by position {} bytes, by name {}", v2.len(), v1.len());
    }

    /// The fields of [`blocked_answer`] by position, as `PACKED_V2` holds them before
    /// compression. A field moved, removed or skipped when empty changes these bytes and
    /// would misread every answer stored before it: add fields last, with a default.
    const BLOCKED_ANSWER_V2: &str = concat!(
        "97a26532a7426c6f636b65649298a8637573746f6d6572ab5261746564416d6f756e74ab5472616e",
        "73616374696f6ec0a435302e35a3313030a3313130a657697468696e98a8637573746f6d6572ab52",
        "61746564416d6f756e74a344617994a3446179aa323032362d31322d3034b4323032362d31322d30",
        "345430303a30303a30305ab4323032362d31322d30355430303a30303a30305aa53131302e35a331",
        "3030a3313130a84578636565646564c29195c41001938a6e7c007000800000000000000100c0a435",
        "302e35a434392e35a130919307b4323032362d31322d30345431303a33303a30305a95c41001938a",
        "6e7c0070008000000000000001aa4c696d6974426c6f636bc0b4323032362d31322d30345431303a",
        "33303a30305adc0012d9216461696c7920726174656420616d6f756e74206f76657220697473206c",
        "696d6974a26532c0a8637573746f6d6572c0c0c0a53131302e35a3313030c0c0c0c0c0c0c0c0c3",
    );

    /// A hold's answer (the first limit check of [`blocked_answer`]), as above.
    const HOLD_ANSWER_V2: &str = concat!(
        "95a75061727469616c92a135a435302e359198a8637573746f6d6572ab5261746564416d6f756e74",
        "ab5472616e73616374696f6ec0a435302e35a3313030a3313130a657697468696ec2a435302e35",
    );

    /// `answer` packs to the fields `v2` (hex) holds, and a stored `v2` reads back as it.
    fn keeps_its_fields<T>(answer: &T, v2: &str)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(hex::encode(rmp_serde::to_vec(answer).unwrap()), v2);
        let packed = framed(PACKED_V2, &hex::decode(v2).unwrap());
        assert_eq!(&unpack::<T>(&packed).unwrap(), answer);
    }

    #[test]
    fn a_packed_answer_keeps_its_fields_by_position() {
        keeps_its_fields(&blocked_answer(), BLOCKED_ANSWER_V2);
        let hold = HoldAnswer {
            grant: Grant::Partial,
            granted: Amounts { quantity: Decimal::new(5, 0), amount: Decimal::new(505, 1) },
            checks: blocked_answer().checks[..1].to_vec(),
            service_not_included: false,
            coverable: Decimal::new(505, 1),
        };
        keeps_its_fields(&hold, HOLD_ANSWER_V2);
    }

    #[test]
    fn a_packed_answer_of_an_unknown_format_or_empty_is_refused_not_misread() {
        assert_eq!(unpack_outcome(&[]).unwrap_err(), "empty packed answer");
        assert_eq!(unpack_outcome(&[3, 0, 0]).unwrap_err(), "unknown packed answer format 3");
        assert!(unpack_outcome(&[PACKED_V1, 9, 9]).is_err(), "damaged data is an error");
    }
}
