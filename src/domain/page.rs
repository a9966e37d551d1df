//! Keyset pagination: page sizes and opaque page tokens, sealed for the organization
//! they were issued to and bound to the filters they were issued under, so a forged or
//! foreign token is refused and one reused with other filters cannot skip rows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::seal::{TokenKey, TokenKind};
use super::validation::Violations;

/// Page size when the caller sends none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A validated page request: how many rows, after which position of the list's stable
/// order (`None` for the first page), and the key that seals the next page's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    pub after: Option<String>,
    pub key: TokenKey,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Position of the last row returned, in the list's own encoding.
    p: String,
    /// Fingerprint of the filters the token was issued under.
    f: String,
}

impl PageRequest {
    /// Reads `page_size` and `page_token` from a list request whose filters are
    /// summarized by `filters`, made by the caller whose tokens `key` seals; every
    /// problem is recorded in `v`.
    pub fn parse(page_size: i32, page_token: &str, filters: &str, key: TokenKey, v: &mut Violations) -> Self {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                v.add("page_size", "must not be negative");
                DEFAULT_PAGE_SIZE
            }
            n => (n as usize).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            match decode(page_token, &key) {
                Some(t) if t.f == fingerprint(filters) => Some(t.p),
                Some(_) => {
                    v.add("page_token", "was issued for other filters");
                    None
                }
                None => {
                    v.add("page_token", "is not a page token this service issued to your organization");
                    None
                }
            }
        };
        Self { size, after, key }
    }

    /// The first page of `size` rows.
    pub fn first(size: usize, key: TokenKey) -> Self {
        Self { size, after: None, key }
    }

    /// The position as a row id, for lists ordered by id; `Err` when the token's
    /// position is not one (a token of another list).
    pub fn after_uuid(&self) -> Result<Option<uuid::Uuid>, Violations> {
        self.after
            .as_deref()
            .map(uuid::Uuid::try_parse)
            .transpose()
            .map_err(|_| Violations::single("page_token", "was issued for another list"))
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        self.size as i64 + 1
    }
}

/// One page of results and the token of the next page (empty when last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// Cuts the `fetch_limit()` rows fetched for `req` to a page; `position` encodes a
    /// row's place in the list order.
    pub fn from_rows(
        mut rows: Vec<T>,
        req: &PageRequest,
        filters: &str,
        position: impl Fn(&T) -> String,
    ) -> Self {
        let more = rows.len() > req.size;
        rows.truncate(req.size);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => encode(&position(last), filters, &req.key),
            _ => String::new(),
        };
        Self { items: rows, next_page_token }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_page_token: self.next_page_token }
    }
}

fn fingerprint(filters: &str) -> String {
    hex::encode(&Sha256::digest(filters.as_bytes())[..8])
}

fn encode(position: &str, filters: &str, key: &TokenKey) -> String {
    let token = Token { p: position.to_owned(), f: fingerprint(filters) };
    // Serializing two strings cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    key.seal(TokenKind::PageToken, &json)
}

/// The token's content when `key` sealed it; a longer token is refused unread.
fn decode(token: &str, key: &TokenKey) -> Option<Token> {
    if token.len() > 1024 {
        return None;
    }
    let bytes = key.open(TokenKind::PageToken, token)?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seal::test_key;

    /// The caller's key in these tests.
    fn key() -> TokenKey {
        test_key(1)
    }

    fn parse(size: i32, token: &str, filters: &str) -> (PageRequest, Violations) {
        parse_as(key(), size, token, filters)
    }

    fn parse_as(key: TokenKey, size: i32, token: &str, filters: &str) -> (PageRequest, Violations) {
        let mut v = Violations::default();
        let p = PageRequest::parse(size, token, filters, key, &mut v);
        (p, v)
    }

    fn first(size: usize) -> PageRequest {
        PageRequest::first(size, key())
    }

    #[test]
    fn a_token_of_up_to_1024_characters_is_read_and_a_longer_one_is_not() {
        let token_of = |len: usize| {
            (1..2000)
                .map(|n| encode(&"p".repeat(n), "f", &key()))
                .find(|t| t.len() == len)
                .expect("some position fits")
        };
        assert!(decode(&token_of(1024), &key()).is_some());
        assert!(decode(&token_of(1026), &key()).is_none());
    }

    #[test]
    fn one_row_more_than_the_page_is_fetched_to_know_whether_another_follows() {
        assert_eq!(first(50).fetch_limit(), 51);
        assert_eq!(first(1).fetch_limit(), 2);
    }

    #[test]
    fn a_position_is_read_as_a_row_id_or_refused_as_another_lists() {
        assert_eq!(first(5).after_uuid(), Ok(None));
        let id = uuid::Uuid::from_u128(42);
        let at_id = PageRequest { size: 5, after: Some(id.to_string()), key: key() };
        assert_eq!(at_id.after_uuid(), Ok(Some(id)));
        let other = PageRequest { size: 5, after: Some("2026-03-01T00:00:00Z|x".into()), key: key() };
        let refused = other.after_uuid().unwrap_err();
        assert_eq!(refused.items()[0].field, "page_token");
    }

    #[test]
    fn page_size_defaults_and_is_capped() {
        assert_eq!(parse(0, "", "").0.size, DEFAULT_PAGE_SIZE);
        assert_eq!(parse(5000, "", "").0.size, MAX_PAGE_SIZE);
        assert!(!parse(-1, "", "").1.is_empty());
    }

    #[test]
    fn token_round_trips_under_the_same_filters() {
        let req = first(2);
        let page = Page::from_rows(vec![1, 2, 3], &req, "tz=UTC", |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        let (next, v) = parse(2, &page.next_page_token, "tz=UTC");
        assert!(v.is_empty());
        assert_eq!(next.after.as_deref(), Some("2"));
    }

    #[test]
    fn token_is_rejected_under_other_filters() {
        let page = Page::from_rows(vec![1, 2, 3], &first(2), "a", |n| n.to_string());
        let (_, v) = parse(2, &page.next_page_token, "b");
        assert_eq!(v.items()[0].field, "page_token");
    }

    #[test]
    fn another_organizations_token_is_rejected_though_its_filters_match() {
        let page = Page::from_rows(vec![1, 2, 3], &first(2), "a", |n| n.to_string());
        let (theirs, v) = parse_as(test_key(2), 2, &page.next_page_token, "a");
        assert_eq!(theirs.after, None);
        assert_eq!(v.items()[0].field, "page_token");
    }

    #[test]
    fn an_unsealed_token_is_rejected() {
        use base64::Engine as _;
        let unsealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"p":"2","f":"{}"}}"#, fingerprint("a")));
        assert_eq!(parse(2, &unsealed, "a").1.items()[0].field, "page_token");
    }

    #[test]
    fn garbage_token_is_rejected() {
        assert!(!parse(2, "not-a-token!", "").1.is_empty());
    }

    #[test]
    fn last_page_has_no_token() {
        let page = Page::from_rows(vec![1, 2], &first(2), "", |n| n.to_string());
        assert!(page.next_page_token.is_empty());
    }
}
