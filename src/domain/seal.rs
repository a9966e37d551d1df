//! Sealed tokens: page tokens and feed cursors end in a MAC keyed by the deployment's
//! secret over the organization they were issued to, so a forged, altered or another
//! organization's token is refused before anything in it is read.
//!
//! A token is `base64url(payload ‖ tag)`, where `tag` is the first 16 bytes of
//! HMAC-SHA256(secret, kind ‖ org ‖ payload). The kind keeps a page token from being
//! accepted as a cursor and the reverse.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ids::OrgId;

/// Bytes of the MAC kept in a token: 128 bits, beyond guessing.
const TAG_LEN: usize = 16;

/// The deployment's secret, shared by every instance (it is stored in the database).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenSecret([u8; 32]);

impl TokenSecret {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key that seals and opens the tokens of `org`.
    pub fn for_org(&self, org: OrgId) -> TokenKey {
        TokenKey { secret: *self, org }
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// What a token stands for; part of what its MAC covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    PageToken = 1,
    FeedCursor = 2,
}

/// Seals and opens the tokens of one organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenKey {
    secret: TokenSecret,
    org: OrgId,
}

impl TokenKey {
    fn mac(&self, kind: TokenKind, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes cannot be refused.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret.0).expect("HMAC takes any key length");
        mac.update(&[kind as u8]);
        mac.update(self.org.0.as_bytes());
        mac.update(payload);
        mac
    }

    /// The token carrying `payload`.
    pub fn seal(&self, kind: TokenKind, payload: &[u8]) -> String {
        let tag = self.mac(kind, payload).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(payload.len() + TAG_LEN);
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The payload of `token` when this key sealed it for `kind`; `None` for anything
    /// else (malformed, altered, another kind, another organization or deployment).
    pub fn open(&self, kind: TokenKind, token: &str) -> Option<Vec<u8>> {
        let mut bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let tag_at = bytes.len().checked_sub(TAG_LEN)?;
        let tag = bytes.split_off(tag_at);
        // Compared in constant time, so the tag cannot be found byte by byte.
        self.mac(kind, &bytes).verify_truncated_left(&tag).ok()?;
        Some(bytes)
    }
}

#[cfg(test)]
pub(crate) fn test_key(org: u128) -> TokenKey {
    TokenSecret::new([7; 32]).for_org(OrgId(uuid::Uuid::from_u128(org)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_payload_opens_with_the_same_key_and_kind() {
        let key = test_key(1);
        let token = key.seal(TokenKind::PageToken, b"position");
        assert_eq!(key.open(TokenKind::PageToken, &token).as_deref(), Some(&b"position"[..]));
    }

    #[test]
    fn another_organizations_token_does_not_open() {
        let token = test_key(1).seal(TokenKind::PageToken, b"position");
        assert_eq!(test_key(2).open(TokenKind::PageToken, &token), None);
    }

    #[test]
    fn another_deployments_token_does_not_open() {
        let org = OrgId(uuid::Uuid::from_u128(1));
        let token = TokenSecret::new([8; 32]).for_org(org).seal(TokenKind::PageToken, b"p");
        assert_eq!(test_key(1).open(TokenKind::PageToken, &token), None);
    }

    #[test]
    fn a_cursor_is_not_a_page_token() {
        let key = test_key(1);
        let token = key.seal(TokenKind::FeedCursor, b"42");
        assert_eq!(key.open(TokenKind::PageToken, &token), None);
    }

    #[test]
    fn a_token_with_any_byte_changed_does_not_open() {
        let key = test_key(1);
        let bytes = URL_SAFE_NO_PAD.decode(key.seal(TokenKind::PageToken, b"position")).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 1;
            assert_eq!(key.open(TokenKind::PageToken, &URL_SAFE_NO_PAD.encode(&altered)), None, "byte {i}");
        }
    }

    #[test]
    fn short_or_undecodable_tokens_do_not_open() {
        let key = test_key(1);
        for bad in ["", "AAAA", "not a token!", "%%%"] {
            assert_eq!(key.open(TokenKind::PageToken, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(format!("{:?}", TokenSecret::new([9; 32])), "TokenSecret(..)");
    }
}
