//! Etags of mutable resources: an opaque rendering of the row version, checked before a
//! change so two writers never silently overwrite each other.

/// The etag of a resource at `version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// True when the caller sent no etag or the one of the current `version`.
pub fn etag_matches(given: &str, version: i64) -> bool {
    given.is_empty() || given == etag(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_etag_skips_the_check_and_stale_one_fails() {
        assert!(etag_matches("", 4));
        assert!(etag_matches(&etag(4), 4));
        assert!(!etag_matches(&etag(3), 4));
    }
}
