//! TLS for the connections that do not go through libpq (the notification listener),
//! with libpq's `sslmode` meanings, so an operator's settings protect every connection
//! alike: `disable` plain; `allow` / `prefer` TLS when the server offers it, unverified;
//! `require` TLS, verified as `verify-ca` when a root certificate file exists (libpq's
//! rule); `verify-ca` the server's chain; `verify-full` the chain and the host name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::BadConnInfo;

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted, not authenticated.
    Nothing,
    /// Signed by a trusted root, whatever name it carries.
    Chain,
    /// Signed by a trusted root, for the host connected to.
    ChainAndName,
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's store.
    System,
}

/// The TLS a connection uses, from libpq's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `None`: no TLS.
    pub verify: Option<Verify>,
    /// TLS or no connection; otherwise plain when the server offers no TLS.
    pub required: bool,
    roots: Option<Roots>,
    /// Client certificate and key files, for certificate authentication.
    client: Option<(PathBuf, PathBuf)>,
}

/// libpq's files under `~/.postgresql`, used when their setting is absent.
fn home_file(name: &str) -> Option<PathBuf> {
    let path = Path::new(&std::env::var_os("HOME")?).join(".postgresql").join(name);
    path.exists().then_some(path)
}

impl TlsSettings {
    /// The TLS libpq would use for these settings (each `None` when not given).
    pub fn from_libpq(
        mode: &str,
        root_cert: Option<&str>,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> Result<Self, BadConnInfo> {
        let roots = match root_cert {
            Some("system") => Some(Roots::System),
            Some(path) => Some(Roots::File(path.into())),
            None => home_file("root.crt").map(Roots::File),
        };
        let root_file_exists = match &roots {
            Some(Roots::File(path)) => path.exists(),
            Some(Roots::System) => true,
            None => false,
        };
        let (verify, required) = match mode {
            "disable" => (None, false),
            "allow" | "prefer" => (Some(Verify::Nothing), false),
            "require" if root_file_exists => (Some(Verify::Chain), true),
            "require" => (Some(Verify::Nothing), true),
            "verify-ca" => (Some(Verify::Chain), true),
            "verify-full" => (Some(Verify::ChainAndName), true),
            other => return Err(BadConnInfo(format!("invalid sslmode {other:?}"))),
        };
        if matches!(verify, Some(Verify::Chain | Verify::ChainAndName)) && !root_file_exists {
            return Err(BadConnInfo(format!(
                "sslmode={mode} needs a root certificate file: set sslrootcert (none at {})",
                root_cert.unwrap_or("~/.postgresql/root.crt")
            )));
        }
        let cert = cert.map(PathBuf::from).or_else(|| home_file("postgresql.crt"));
        let key = key.map(PathBuf::from).or_else(|| home_file("postgresql.key"));
        let client = match (cert, key) {
            (Some(cert), Some(key)) if cert.exists() => Some((cert, key)),
            _ => None,
        };
        Ok(Self { verify, required, roots, client })
    }

    /// A connector for tokio-postgres, reading the certificate files now (so a renewed
    /// certificate is used from the next connection on).
    pub fn connector(&self) -> Result<MakeRustlsConnect, BadConnInfo> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| BadConnInfo(format!("TLS: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.verify {
            None | Some(Verify::Nothing) => Arc::new(Lenient { chain: None, provider: provider.clone() }),
            Some(Verify::Chain) => {
                Arc::new(Lenient { chain: Some(self.webpki(&provider)?), provider: provider.clone() })
            }
            Some(Verify::ChainAndName) => self.webpki(&provider)?,
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| BadConnInfo(format!("sslcert {}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| BadConnInfo(format!("sslkey {}: {e}", key.display())))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| BadConnInfo(format!("sslcert: {e}")))?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn webpki(&self, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, BadConnInfo> {
        let mut store = RootCertStore::empty();
        match &self.roots {
            Some(Roots::File(path)) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| BadConnInfo(format!("sslrootcert {}: {e}", path.display())))?;
                store.add_parsable_certificates(certs);
            }
            Some(Roots::System) => {
                store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
            None => {}
        }
        if store.is_empty() {
            return Err(BadConnInfo("sslrootcert holds no usable certificate".into()));
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| BadConnInfo(format!("TLS roots: {e}")))
    }
}

/// What libpq checks short of `verify-full`: with `chain` (`verify-ca`), a chain to a
/// trusted root, whatever name it carries; without (`prefer`, `require` with no root
/// file), nothing: encrypted, not authenticated. The handshake's signatures are always
/// checked.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: &str, root: Option<&str>) -> Result<TlsSettings, BadConnInfo> {
        TlsSettings::from_libpq(mode, root, None, None)
    }

    #[test]
    fn sslmode_means_what_it_means_to_libpq() {
        let missing = Some("/nonexistent/root.crt");
        let cases = [
            ("disable", None, false),
            ("allow", Some(Verify::Nothing), false),
            ("prefer", Some(Verify::Nothing), false),
            ("require", Some(Verify::Nothing), true),
        ];
        for (mode, verify, required) in cases {
            let s = settings(mode, missing).unwrap();
            assert_eq!((s.verify, s.required), (verify, required), "{mode}");
        }
        // Only the file's existence matters here; what it holds is read when connecting.
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert_eq!(
            settings("require", Some(root)).unwrap().verify,
            Some(Verify::Chain),
            "a root file makes require verify-ca"
        );
        assert_eq!(settings("verify-ca", Some(root)).unwrap().verify, Some(Verify::Chain));
        assert_eq!(settings("verify-full", Some(root)).unwrap().verify, Some(Verify::ChainAndName));
        assert_eq!(settings("verify-full", Some("system")).unwrap().verify, Some(Verify::ChainAndName));
    }

    #[test]
    fn verifying_without_a_root_file_is_refused_up_front() {
        for mode in ["verify-ca", "verify-full"] {
            let err = settings(mode, Some("/nonexistent/root.crt")).unwrap_err();
            assert!(err.to_string().contains("sslrootcert"), "{mode}: {err}");
        }
        assert!(settings("verify-everything", None).is_err());
    }
}
