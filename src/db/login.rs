//! Who the service's connections log in as. The service logs in as its own role, which
//! cannot switch to another, owns nothing and cannot bypass row-level security; only
//! migrations and operator commands log in as the schema's owner.

/// A database URL that cannot be turned into the service role's URL.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database URL is not of the form postgres://[user[:password]@]host[:port]/database; \
     set APP_DATABASE_URL to the URL the service's role ({role}) logs in with"
)]
pub struct NotAUrl {
    role: String,
}

/// `url` logging in as `role`: the same servers, database and parameters, with the user
/// replaced by `role` and any password dropped (so it works with trust, peer or
/// certificate authentication; with passwords, give the service's URL explicitly).
pub fn as_role(url: &str, role: &str) -> Result<String, NotAUrl> {
    let not_a_url = || NotAUrl { role: role.to_owned() };
    let (scheme, rest) = ["postgres://", "postgresql://"]
        .into_iter()
        .find_map(|s| url.strip_prefix(s).map(|rest| (s, rest)))
        .ok_or_else(not_a_url)?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // libpq requires an '@' inside the user or password to be percent-encoded, so the
    // last one ends the user information.
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("user=") && !p.starts_with("password="))
        .collect();
    let mut out = format!("{scheme}{}@{hosts}{path}", percent_encode(role));
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    Ok(out)
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_and_password_are_replaced_by_the_role() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/billing", "postgres://billing_app@127.0.0.1:5432/billing"),
            ("postgres://owner:s3cr%40t@db:5432/billing", "postgres://billing_app@db:5432/billing"),
            ("postgresql://127.0.0.1/billing", "postgresql://billing_app@127.0.0.1/billing"),
            (
                "postgres://u@h1:5432,h2:5433/b?sslmode=require",
                "postgres://billing_app@h1:5432,h2:5433/b?sslmode=require",
            ),
            (
                "postgres://h/b?user=owner&sslmode=disable&password=x",
                "postgres://billing_app@h/b?sslmode=disable",
            ),
            ("postgres://h?dbname=b", "postgres://billing_app@h?dbname=b"),
        ];
        for (url, expected) in cases {
            assert_eq!(as_role(url, "billing_app").unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn a_role_name_is_percent_encoded() {
        assert_eq!(as_role("postgres://h/b", "a b@c").unwrap(), "postgres://a%20b%40c@h/b");
    }

    #[test]
    fn a_key_value_connection_string_is_refused_with_what_to_set() {
        let err = as_role("host=h user=owner dbname=b", "billing_app").unwrap_err();
        assert!(err.to_string().contains("APP_DATABASE_URL"), "{err}");
    }
}
