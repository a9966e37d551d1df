//! Request fingerprints for idempotency: two requests under one key are the same request
//! exactly when their fingerprints are equal.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// SHA-256 over `parts` and then `pairs`, each unambiguously delimited.
pub fn fingerprint(parts: &[String], pairs: &BTreeMap<String, String>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (k, v) in pairs {
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_keep_neighbouring_parts_apart() {
        let none = BTreeMap::new();
        assert_ne!(
            fingerprint(&["ab".into(), "c".into()], &none),
            fingerprint(&["a".into(), "bc".into()], &none)
        );
        let a = BTreeMap::from([("k".to_string(), "v1".to_string())]);
        let b = BTreeMap::from([("k".to_string(), "v2".to_string())]);
        assert_ne!(fingerprint(&[], &a), fingerprint(&[], &b));
    }
}
