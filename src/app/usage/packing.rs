//! The answers stored with events (and reservations) for their replays: packed as
//! LZ4-compressed MessagePack, or JSON from before packing.

use super::*;

/// First byte of a packed answer: how the rest is encoded. 1 = MessagePack with field
/// names (so fields can be added, with serde defaults, and older answers still read, as
/// with the JSON it replaced), LZ4-compressed (the field names repeat in every limit
/// check: about 1.3 KB becomes about a third of that).
const PACKED_V1: u8 = 1;

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
    let named =
        rmp_serde::to_vec_named(answer).map_err(|e| DbError::Other(format!("packing an answer: {e}")))?;
    let mut packed = vec![PACKED_V1];
    packed.extend(lz4_flex::compress_prepend_size(&named));
    Ok(packed)
}

/// Reads an answer written by [`pack`].
pub(in crate::app) fn unpack<T: serde::de::DeserializeOwned>(packed: &[u8]) -> Result<T, String> {
    match packed.split_first() {
        Some((&PACKED_V1, compressed)) => {
            let named = lz4_flex::decompress_size_prepended(compressed).map_err(|e| e.to_string())?;
            rmp_serde::from_slice(&named).map_err(|e| e.to_string())
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
    use super::*;

    #[test]
    fn a_packed_answer_of_an_unknown_format_or_empty_is_refused_not_misread() {
        assert_eq!(unpack_outcome(&[]).unwrap_err(), "empty packed answer");
        assert_eq!(unpack_outcome(&[2, 0, 0]).unwrap_err(), "unknown packed answer format 2");
        assert!(unpack_outcome(&[PACKED_V1, 9, 9]).is_err(), "damaged data is an error");
    }
}
