//! Certificates for the TLS tests (Redis over `rediss://`, the API over HTTPS), generated at test time with
//! `rcgen`: a private CA, and a server certificate for `127.0.0.1` / `localhost` signed by it, written as PEM files
//! to a temporary folder that lives as long as the [`TestPki`].
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::PathBuf;

/// A private CA and one server certificate it signed, as PEM files.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA certificate (PEM), for clients that take it as text.
    pub ca_pem: String,
}

impl TestPki {
    /// A fresh CA (named `name`) and a server certificate for `127.0.0.1` and `localhost`.
    pub fn new(name: &str) -> TestPki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "fsdialer test server");
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_pem = ca_cert.pem();
        TestPki {
            ca_file: write("ca.pem", &ca_pem),
            cert_file: write("cert.pem", &server_cert.pem()),
            key_file: write("key.pem", &server_key.serialize_pem()),
            ca_pem,
            _dir: dir,
        }
    }
}
