//! TLS material shared by the two encrypted transports: the Redis store over `rediss://` and the API over HTTPS.
//!
//! This module owns three things, so that the store, the API server and the configuration check agree on them:
//! - the **crypto provider**: rustls is built with `ring` only; [`install_crypto_provider`] makes it the process
//!   default (redis-rs builds its rustls client configuration with the process default, and another crate in the
//!   build may enable a second provider, which would leave rustls unable to choose);
//! - **reading PEM files** ([`read_certificates`], [`read_private_key`]) with errors that name the file and never
//!   contain any of its content (a key must not end up in a log because its file was malformed);
//! - the **server configuration** of the API ([`server_config`]).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a certificate or key file cannot be used. Messages name the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no PEM private key in the file (expected -----BEGIN PRIVATE KEY----- or an RSA/EC key)", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("{}: not valid PEM ({reason})", path.display())]
    BadPem { path: PathBuf, reason: &'static str },
}

/// The rustls provider of this crate: `ring`. rustls 0.23.48 deprecates it in favour of aws-lc-rs because it has
/// no post-quantum key exchange; it is kept because aws-lc-rs builds a large C library (slow on small build
/// machines) and classical X25519/ECDHE is what Redis and HTTPS clients negotiate today anyway.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Makes [`provider`] the process-wide rustls provider, once; later calls (and a provider installed by someone
/// else first) are fine.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is installed already: that one is used, which is what we want.
        let _ = provider().install_default();
    });
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A short description of a PEM error that quotes nothing from the file (some variants carry a line of it).
fn pem_reason(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        Error::Base64Decode(_) => "a section is not valid base64",
        _ => "unreadable",
    }
}

fn bad_pem(path: &Path, e: &rustls::pki_types::pem::Error) -> TlsFileError {
    TlsFileError::BadPem {
        path: path.to_path_buf(),
        reason: pem_reason(e),
    }
}

fn parse_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, &e))?;
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The certificates of a PEM file (a chain, or the CAs to trust); at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    parse_certificates(path, &read(path)?)
}

/// The text of a PEM file of certificates, checked to hold at least one (for APIs that take PEM bytes).
pub fn read_certificate_pem(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    let pem = read(path)?;
    parse_certificates(path, &pem)?;
    Ok(pem)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsFileError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        e => bad_pem(path, &e),
    })
}

/// The rustls server configuration of the API: certificate `chain` (server certificate first) with its private
/// `key`, HTTP/1.1. An error means the key does not fit the certificate or is of a kind rustls cannot use.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    fn pair() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        Pair { dir, cert, key }
    }

    #[test]
    fn a_generated_certificate_and_key_make_a_server_configuration() {
        let p = pair();
        let chain = read_certificates(&p.cert).unwrap();
        assert_eq!(chain.len(), 1);
        assert!(server_config(chain, read_private_key(&p.key).unwrap()).is_ok());
    }

    #[test]
    fn a_missing_file_is_named() {
        let p = pair();
        let missing = p.dir.path().join("nope.pem");
        let e = read_certificates(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: cannot read:", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn a_key_given_as_the_certificate_and_the_other_way_round_are_refused_by_name() {
        let p = pair();
        let e = read_certificates(&p.key).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = read_private_key(&p.cert).unwrap_err().to_string();
        assert!(e.contains("no PEM private key"), "{e}");
    }

    #[test]
    fn a_damaged_key_file_is_refused_without_quoting_it() {
        let p = pair();
        let pem = std::fs::read_to_string(&p.key).unwrap();
        // Cut the END line off: the body (key material) must not appear in the message.
        let body: String = pem.lines().take(2).collect::<Vec<_>>().join("\n");
        std::fs::write(&p.key, &body).unwrap();
        let e = read_private_key(&p.key).unwrap_err().to_string();
        assert!(e.contains("not valid PEM"), "{e}");
        let secret_line = body.lines().nth(1).unwrap();
        assert!(!e.contains(secret_line), "{e}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = pair();
        let b = pair();
        let chain = read_certificates(&a.cert).unwrap();
        assert!(server_config(chain, read_private_key(&b.key).unwrap()).is_err());
    }
}
