//! API keys: their printed form, and checking a presented secret against the stored hash.
//!
//! A key is `bck_<key id as 32 hex digits>_<secret>`. The id is public and finds the
//! row; only the SHA-256 of the secret is stored, and it is compared in constant time.
//! The secret is 256 random bits, so a fast hash is enough: there is nothing to brute
//! force.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ids::{ApiKeyId, OrgId};
use super::scope::Scopes;

/// What authenticating a call needs to know about its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub org: OrgId,
    pub secret_sha256: Vec<u8>,
    /// Revocation is final, so a revoked key may be remembered as such.
    pub revoked: bool,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as stored, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that created it; `None` for keys made with the admin command.
    pub created_by: Option<ApiKeyId>,
}

const PREFIX: &str = "bck_";
const ID_HEX_LEN: usize = 32;
/// Bytes of randomness in a secret.
pub const SECRET_BYTES: usize = 32;
/// Longest key string accepted before any parsing, to bound work on garbage input.
const MAX_KEY_LEN: usize = 128;

/// The full key string given to the operator once, from its id and random bytes.
pub fn format_key(id: ApiKeyId, secret: &[u8; SECRET_BYTES]) -> String {
    format!("{PREFIX}{}_{}", id.uuid().simple(), URL_SAFE_NO_PAD.encode(secret))
}

/// Splits a presented key into its id and secret; `None` when it is not a key's shape.
pub fn parse_key(key: &str) -> Option<(ApiKeyId, &str)> {
    if key.len() > MAX_KEY_LEN {
        return None;
    }
    let rest = key.strip_prefix(PREFIX)?;
    let (id_hex, secret) = (rest.get(..ID_HEX_LEN)?, rest.get(ID_HEX_LEN..)?);
    let secret = secret.strip_prefix('_')?;
    if secret.is_empty() || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = Uuid::try_parse(id_hex).ok()?;
    Some((ApiKeyId(id), secret))
}

/// What is stored for a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// True when `secret` hashes to `stored`, in time independent of where they differ.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored).into()
}

/// Parses either a full key or a bare key id (as printed by `admin list-api-keys`).
pub fn parse_key_or_id(value: &str) -> Option<ApiKeyId> {
    parse_key(value).map(|(id, _)| id).or_else(|| Uuid::try_parse(value).ok().map(ApiKeyId))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_key_parses_back_and_verifies() {
        let id = ApiKeyId::generate();
        let key = format_key(id, &[7; SECRET_BYTES]);
        let (parsed, secret) = parse_key(&key).expect("parses");
        assert_eq!(parsed, id);
        assert!(secret_matches(secret, &hash_secret(secret)));
        assert!(!secret_matches("other", &hash_secret(secret)));
    }

    #[test]
    fn a_key_of_the_longest_accepted_length_parses_and_one_longer_does_not() {
        let id = ApiKeyId::generate();
        let head = format!("{PREFIX}{}_", id.uuid().simple());
        let longest = format!("{head}{}", "s".repeat(MAX_KEY_LEN - head.len()));
        assert_eq!(longest.len(), MAX_KEY_LEN);
        assert_eq!(parse_key(&longest).map(|(i, _)| i), Some(id));
        assert_eq!(parse_key(&format!("{longest}s")), None);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "bck_",
            "Bearer x",
            "bck_zz000000000000000000000000000000_abc",
            "bck_0190a1b2c3d4e5f60718293a4b5c6d7e",
            "bck_0190a1b2c3d4e5f60718293a4b5c6d7e_",
            &"x".repeat(10_000),
        ] {
            assert!(parse_key(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn key_id_alone_is_accepted_for_revocation() {
        let id = ApiKeyId::generate();
        assert_eq!(parse_key_or_id(&id.to_string()), Some(id));
        assert_eq!(parse_key_or_id(&format_key(id, &[1; SECRET_BYTES])), Some(id));
    }
}
