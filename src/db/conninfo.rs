//! Database connection settings as libpq reads them. The pool connects through libpq
//! (Diesel), the notification listener through tokio-postgres; both must reach the same
//! server the same way, so the operator's string (a `postgres://` URL or `key=value`
//! pairs) is parsed once by libpq itself, changed as settings (never as text), and
//! handed to each driver in the form it reads.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::tls::TlsSettings;

/// A connection string libpq refuses, or settings the listener cannot honour.
#[derive(Debug, thiserror::Error)]
#[error("database connection settings: {0}")]
pub struct BadConnInfo(pub String);

/// Connection settings: only those the operator gave; libpq adds its defaults
/// (environment variables such as `PGSSLMODE`, then compiled-in values) when it
/// connects, and [`ConnInfo::listener_config`] adds the same ones.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    settings: BTreeMap<String, String>,
}

impl FromStr for ConnInfo {
    type Err = BadConnInfo;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = CString::new(s).map_err(|_| BadConnInfo("contains a NUL byte".into()))?;
        let mut error: *mut c_char = std::ptr::null_mut();
        // SAFETY: `text` is NUL-terminated and outlives the call; libpq allocates the
        // result (or the error message) and `LibpqOptions`/`take_error` free it.
        let options = unsafe { pq_sys::PQconninfoParse(text.as_ptr(), &mut error) };
        if options.is_null() {
            return Err(BadConnInfo(take_error(error)));
        }
        let settings =
            LibpqOptions(options).pairs(|o| o.val).into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        Ok(Self { settings })
    }
}

/// libpq's error message, freed.
fn take_error(error: *mut c_char) -> String {
    if error.is_null() {
        return "libpq cannot parse it (out of memory)".into();
    }
    // SAFETY: libpq returned a NUL-terminated message it allocated; it is copied, then
    // freed once with the function libpq documents for it.
    unsafe {
        let message = CStr::from_ptr(error).to_string_lossy().trim_end().to_owned();
        pq_sys::PQfreemem(error.cast());
        message
    }
}

/// An array of `PQconninfoOption` that libpq allocated, freed on drop.
struct LibpqOptions(*mut pq_sys::PQconninfoOption);

impl LibpqOptions {
    /// Every option's keyword with the string `field` picks from it (when not NULL).
    fn pairs(
        &self,
        field: impl Fn(&pq_sys::PQconninfoOption) -> *mut c_char,
    ) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut option = self.0;
        // SAFETY: libpq ends the array with an option whose keyword is NULL; every
        // string in it is NUL-terminated and lives until the array is freed.
        unsafe {
            while !(*option).keyword.is_null() {
                let text =
                    |p: *mut c_char| (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned());
                if let Some(keyword) = text((*option).keyword) {
                    out.push((keyword, text(field(&*option))));
                }
                option = option.add(1);
            }
        }
        out
    }
}

impl Drop for LibpqOptions {
    fn drop(&mut self) {
        // SAFETY: the array came from libpq and is freed exactly once.
        unsafe { pq_sys::PQconninfoFree(self.0) }
    }
}

/// What libpq uses for every setting a string leaves out: its environment variable
/// (`PGHOST`, `PGSSLMODE`, ...) or compiled-in default.
fn libpq_defaults() -> BTreeMap<String, String> {
    // SAFETY: no arguments; the result is freed by `LibpqOptions`.
    let options = unsafe { pq_sys::PQconndefaults() };
    if options.is_null() {
        return BTreeMap::new();
    }
    LibpqOptions(options).pairs(|o| o.val).into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

/// Settings tokio-postgres reads under libpq's name and meaning.
const SHARED_KEYS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Settings the listener handles itself (TLS) or that do not change where or how it
/// connects; any other setting given explicitly is refused rather than ignored.
const OWN_KEYS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "keepalives_count",
    "tcp_user_timeout",
    "fallback_application_name",
    "sslsni",
    "gssencmode",
];

impl ConnInfo {
    /// The value of a setting the string gave.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// The same settings with `key` set to `value`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings.insert(key.to_owned(), value.into());
        self
    }

    /// The same settings with `key` set to `value` unless it is set already.
    pub fn with_default(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings.entry(key.to_owned()).or_insert_with(|| value.into());
        self
    }

    /// The same servers, database and settings, logging in as `role`; any password is
    /// dropped (it was the other user's), so this suits trust, peer or certificate
    /// authentication; with passwords the role's own settings are given explicitly.
    pub fn as_role(mut self, role: &str) -> Self {
        self.settings.remove("password");
        self.with("user", role)
    }

    /// The same server and settings, on database `name`.
    pub fn on_database(self, name: &str) -> Self {
        self.with("dbname", name)
    }

    /// The `key='value'` string libpq reads back to these same settings (passwords
    /// included: never log it; `Debug` hides them).
    pub fn to_libpq(&self) -> String {
        let quoted = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        self.settings.iter().map(|(k, v)| format!("{k}={}", quoted(v))).collect::<Vec<_>>().join(" ")
    }

    /// The listener's tokio-postgres settings and TLS, meaning what libpq would make of
    /// this string in this environment.
    pub fn listener_config(&self) -> Result<(tokio_postgres::Config, TlsSettings), BadConnInfo> {
        let mut effective = libpq_defaults();
        effective.retain(|k, _| SHARED_KEYS.contains(&k.as_str()) || OWN_KEYS.contains(&k.as_str()));
        for (key, value) in &self.settings {
            if !SHARED_KEYS.contains(&key.as_str()) && !OWN_KEYS.contains(&key.as_str()) {
                return Err(BadConnInfo(format!(
                    "`{key}` is not supported by the notification listener's connection"
                )));
            }
            effective.insert(key.clone(), value.clone());
        }
        if effective.get("gssencmode").is_some_and(|m| m == "require") {
            return Err(BadConnInfo(
                "gssencmode=require is not supported by the notification listener".into(),
            ));
        }
        let shared: BTreeMap<&str, &str> = effective
            .iter()
            .filter(|(k, _)| SHARED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut config: tokio_postgres::Config =
            ConnInfo { settings: shared.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
                .to_libpq()
                .parse()
                .map_err(|e| BadConnInfo(format!("{e}")))?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            // libpq's own default: its socket directory (Debian's, then upstream's).
            let dir = ["/var/run/postgresql", "/tmp"].into_iter().find(|d| std::path::Path::new(d).exists());
            config.host_path(dir.unwrap_or("/tmp"));
        }
        if let Some(n) = effective.get("keepalives_count") {
            config.keepalives_retries(number(n, "keepalives_count")?);
        }
        // libpq counts this one in milliseconds (tokio-postgres's parser, in seconds).
        if let Some(ms) = effective.get("tcp_user_timeout") {
            config.tcp_user_timeout(Duration::from_millis(number(ms, "tcp_user_timeout")?));
        }
        let tls = TlsSettings::from_libpq(
            effective.get("sslmode").map_or("prefer", String::as_str),
            effective.get("sslrootcert").map(String::as_str),
            effective.get("sslcert").map(String::as_str),
            effective.get("sslkey").map(String::as_str),
        )?;
        config.ssl_mode(match tls.verify {
            None => tokio_postgres::config::SslMode::Disable,
            Some(_) if tls.required => tokio_postgres::config::SslMode::Require,
            Some(_) => tokio_postgres::config::SslMode::Prefer,
        });
        Ok((config, tls))
    }
}

fn number<T: FromStr>(value: &str, key: &str) -> Result<T, BadConnInfo> {
    value.parse().map_err(|_| BadConnInfo(format!("{key} must be a whole number, got {value:?}")))
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.settings {
            map.entry(k, if k == "password" { &"<hidden>" } else { v });
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ConnInfo {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_url_and_key_value_pairs_are_the_same_settings() {
        let url =
            parse("postgres://owner:s3cr%40t@db.example:5433/billing?sslmode=require&connect_timeout=3");
        let pairs = parse(
            "host=db.example port=5433 user=owner password=s3cr@t dbname=billing sslmode=require connect_timeout=3",
        );
        assert_eq!(url, pairs);
        assert_eq!(url.get("password"), Some("s3cr@t"));
    }

    #[test]
    fn what_libpq_refuses_is_refused_with_its_reason() {
        let err = "host=h nonsense=1".parse::<ConnInfo>().unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
        assert!("host='unterminated".parse::<ConnInfo>().is_err());
        assert!("postgres://h/db%zz".parse::<ConnInfo>().is_err());
    }

    #[test]
    fn the_libpq_string_reads_back_to_the_same_settings() {
        let tricky =
            parse("postgres://h/db").with("password", "it's a \\ secret").with("application_name", "a b");
        assert_eq!(parse(&tricky.to_libpq()), tricky);
    }

    #[test]
    fn logging_in_as_a_role_keeps_everything_but_the_user_and_password() {
        let owner = parse("postgres://owner:pw@h1:5432,h2:5433/b?sslmode=verify-full&sslrootcert=/ca.pem");
        let app = owner.clone().as_role("billing_app");
        assert_eq!(app.get("user"), Some("billing_app"));
        assert_eq!(app.get("password"), None);
        for key in ["host", "port", "dbname", "sslmode", "sslrootcert"] {
            assert_eq!(app.get(key), owner.get(key), "{key}");
        }
        let pairs = parse("host=h dbname=b user=owner").as_role("billing_app");
        assert_eq!(pairs, parse("postgres://billing_app@h/b"));
    }

    #[test]
    fn a_default_does_not_replace_what_was_given() {
        let given = parse("postgres://h/db?connect_timeout=9").with_default("connect_timeout", "2");
        assert_eq!(given.get("connect_timeout"), Some("9"));
        let added = parse("postgres://h/db").with_default("connect_timeout", "2");
        assert_eq!(added.get("connect_timeout"), Some("2"));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", parse("postgres://u:hunter2@h/db"));
        assert!(!shown.contains("hunter2") && shown.contains("<hidden>"), "{shown}");
    }

    #[test]
    fn the_listener_reaches_the_same_servers_as_libpq() {
        let (config, _) =
            parse("postgres://u@h1:5433,h2/b?connect_timeout=4&keepalives_count=7&tcp_user_timeout=1500")
                .listener_config()
                .unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp("h1".into()), tokio_postgres::config::Host::Tcp("h2".into())]
        );
        assert_eq!(config.get_ports(), [5433, 5432]);
        assert_eq!(config.get_user(), Some("u"));
        assert_eq!(config.get_dbname(), Some("b"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(4)));
        assert_eq!(config.get_keepalives_retries(), Some(7));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_millis(1500)));
    }

    #[test]
    fn the_listener_refuses_a_setting_it_cannot_honour() {
        let err = parse("postgres://h/b?sslcrl=/crl.pem").listener_config().unwrap_err();
        assert!(err.to_string().contains("sslcrl"), "{err}");
        let err = parse("postgres://h/b?gssencmode=require").listener_config().unwrap_err();
        assert!(err.to_string().contains("gssencmode"), "{err}");
    }
}
