//! The run configuration's tests: loading, defaults, every refusal with its place.

use super::*;

const FULL: &str = r#"
node_id = "node-a"
store = "redis://127.0.0.1:6379"
[api]
listen = "0.0.0.0:8080"
metrics_public = true
[[api.keys]]
id = "ops"
secret = "0123456789abcdef0123"
role = "admin"
[[api.keys]]
id = "crm"
secret = "0123456789abcdef-crm"
role = "members-writer"
[engine]
lease_sec = 30
[[switches]]
name = "fs1"
address = "10.0.0.5:8021"
password = "secret"
max_sessions = 500
sessions_per_second = 20
sessions_per_call = 1
[[campaigns]]
run = true
[campaigns.config]
id = "sales"
name = "Sales"
gateways = [{ name = "gw", pattern = "^(.*)$", dial_string = "sofia/gateway/gw/$1" }]
calendar = { timezone = "Europe/Kyiv", accept = [{ weekday = 1, start_min = 540, end_min = 1080 }] }
"#;

#[test]
fn a_full_configuration_loads_and_checks() {
    let cfg = RunConfig::from_toml(FULL).unwrap();
    assert_eq!(cfg.switches[0].max_sessions, Some(500));
    assert_eq!(cfg.engine.lease_sec, 30);
    assert_eq!(cfg.engine.claim_batch, 100);
    let loaded = cfg.check().unwrap();
    assert_eq!(loaded[0].config.id.as_deref(), Some("sales"));
    assert_eq!(loaded[0].run, Some(true));
    let (keys, sources) = cfg.keys(|_| None, false).unwrap();
    assert!(!keys.is_empty());
    assert_eq!(sources.len(), 2);
}

#[test]
fn problems_are_reported_with_their_paths() {
    let e = RunConfig::from_toml("[api]\nlisten = 8080\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "api.listen (line 2): invalid type: integer `8080`, expected a string"
    );
    let e = RunConfig::from_toml("[[switches]]\nname = \"a\"\nadress = \"x\"\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("switches[0].adress (line 3): unknown field `adress`"),
        "{e}"
    );
    let cfg = RunConfig::from_toml(
        "store = \"postgres://x\"\n[api]\nmax_member_bytes = 2000000000\n[[campaigns]]\n[campaigns.config]\nid = \"c\"\nlimit = 0\n",
    )
    .unwrap();
    let e = cfg.check().unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "store: \"postgres://x\": {}",
            crate::store::STORE_URL_FORMS
        )),
        "{e}"
    );
    assert!(e.contains("switches: none configured"), "{e}");
    assert!(
        e.contains("api.max_member_variables / api.max_member_bytes: must be 1 to 10000 variables"),
        "{e}"
    );
    assert!(
        e.contains("campaigns[0].config: limit: must be >= 1")
            || e.contains("campaigns[0].config: limit"),
        "{e}"
    );
}

#[test]
fn keys_come_from_the_file_the_environment_or_are_generated() {
    let cfg = RunConfig::embedded();
    let env = |k: &str| match k {
        ENV_KEY => Some("me".to_string()),
        ENV_TOKEN => Some("0123456789abcdef-me".to_string()),
        _ => None,
    };
    let (_, s) = cfg.keys(env, true).unwrap();
    assert_eq!(s[0].1, KeySource::Environment);
    let (_, s) = cfg.keys(|_| None, true).unwrap();
    assert_eq!(s[0].1, KeySource::Generated);
    assert!(s[0].0.secret.len() >= 32);
    assert!(
        cfg.keys(|_| None, false)
            .unwrap_err()
            .to_string()
            .starts_with("api.keys: no key")
    );
    let half = |k: &str| (k == ENV_KEY).then(|| "x".to_string());
    assert!(cfg.keys(half, true).is_err());
    let short = |k: &str| {
        Some(if k == ENV_KEY {
            "a".into()
        } else {
            "short".into()
        })
    };
    assert_eq!(
        cfg.keys(short, true).unwrap_err().to_string(),
        "FSDIALER_API_KEY/FSDIALER_API_TOKEN: secret: must be at least 16 bytes"
    );
}

#[test]
fn the_example_configuration_file_loads_and_checks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/api/fsdialer.example.toml");
    let cfg = RunConfig::from_file(&path).unwrap();
    assert_eq!(cfg.switches.len(), 2);
    assert_eq!(
        cfg.switches[1].max_sessions, None,
        "fs2 sets no limits: they are read from the switch at connect"
    );
    let loaded = cfg.check().unwrap();
    let ids: Vec<_> = loaded
        .iter()
        .map(|c| c.config.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["571f2e2e6ea6478aba60581a", "sales-2025"]);
    assert_eq!(cfg.keys(|_| None, false).unwrap().1.len(), 3);
}

#[test]
fn the_embedded_default_checks() {
    assert!(RunConfig::embedded().check().unwrap().is_empty());
}

/// A configuration file in a fresh folder holding a CA, a certificate it signed for 127.0.0.1 and its key
/// (`ca.pem`, `cert.pem`, `key.pem`): `text`, then a simulated switch.
fn file_with_certificates(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
    ] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let path = dir.path().join("fsdialer.toml");
    std::fs::write(&path, format!("{text}\n[sim]\nspeed = 1.0\n")).unwrap();
    (dir, path)
}

/// The problems `check` finds in `text` (empty if none), and the folder of its files.
fn problems_in(text: &str) -> (tempfile::TempDir, String) {
    let (dir, path) = file_with_certificates(text);
    let problems = match RunConfig::from_file(&path).unwrap().check() {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    (dir, problems)
}

fn problems(text: &str) -> String {
    problems_in(text).1
}

#[test]
fn tls_files_are_found_next_to_the_configuration_and_check() {
    let e = problems(
        "store = \"rediss://default:pw@127.0.0.1:6380/1\"\nstore_ca_file = \"ca.pem\"\n\
         [api]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n",
    );
    assert_eq!(e, "");
    let (_dir, path) =
        file_with_certificates("[api]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n");
    assert!(
        RunConfig::from_file(&path)
            .unwrap()
            .api
            .tls()
            .unwrap()
            .is_some()
    );
    assert!(RunConfig::embedded().api.tls().unwrap().is_none());
}

#[test]
fn api_certificate_and_key_come_together() {
    let e = problems("[api]\ntls_cert_file = \"cert.pem\"\n");
    assert_eq!(
        e,
        "api.tls_key_file: missing (api.tls_cert_file is set; give both or neither)"
    );
    let e = problems("[api]\ntls_key_file = \"key.pem\"\n");
    assert_eq!(
        e,
        "api.tls_cert_file: missing (api.tls_key_file is set; give both or neither)"
    );
}

#[test]
fn unusable_tls_files_are_reported_with_their_key_and_file_but_not_their_content() {
    let (dir, e) =
        problems_in("[api]\ntls_cert_file = \"missing.pem\"\ntls_key_file = \"key.pem\"\n");
    let missing = dir.path().join("missing.pem");
    assert!(
        e.starts_with(&format!(
            "api.tls_cert_file: {}: cannot read:",
            missing.display()
        )),
        "{e}"
    );
    // The certificate where the key should be, and the other way round.
    let e = problems("[api]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"cert.pem\"\n");
    assert!(e.starts_with("api.tls_key_file: "), "{e}");
    assert!(e.contains("cert.pem: no PEM private key"), "{e}");
    let e = problems("[api]\ntls_cert_file = \"key.pem\"\ntls_key_file = \"key.pem\"\n");
    assert!(e.starts_with("api.tls_cert_file: "), "{e}");
    assert!(e.contains("key.pem: no PEM certificate"), "{e}");
    // The CA is not the certificate of this key.
    let (dir, e) = problems_in("[api]\ntls_cert_file = \"ca.pem\"\ntls_key_file = \"key.pem\"\n");
    assert!(
        e.starts_with("api.tls_cert_file / api.tls_key_file: "),
        "{e}"
    );
    let key = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!e.contains(line), "key material in {e}");
    }
}

#[test]
fn store_ca_file_needs_a_rediss_store_and_a_readable_certificate() {
    let e = problems("store = \"redis://127.0.0.1:6379\"\nstore_ca_file = \"ca.pem\"\n");
    assert_eq!(e, "store_ca_file: only used with a rediss:// (TLS) store");
    let e = problems("store = \"rediss://127.0.0.1:6380\"\nstore_ca_file = \"key.pem\"\n");
    assert!(e.starts_with("store_ca_file: "), "{e}");
    assert!(e.contains("key.pem: no PEM certificate"), "{e}");
    let e = problems("store = \"rediss://u:s3cr3t@127.0.0.1:6380/#insecure\"\n");
    assert!(e.contains("#insecure is refused"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
}

#[test]
fn sentinel_and_cluster_stores_are_accepted_and_malformed_ones_named() {
    for ok in [
        "store = \"redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/main\"\nstore_wait_replicas = 1\n",
        "store = \"redis+cluster://10.0.0.1:7000,10.0.0.2:7000\"\n",
    ] {
        assert_eq!(problems(ok), "", "{ok}");
    }
    let e = problems("store = \"redis+sentinel://10.0.0.1:26379\"\n");
    assert!(e.contains("mastername"), "{e}");
    let e = problems("store = \"redis+cluster://u:s3cr3t@10.0.0.1\"\n");
    assert!(e.contains("host:port") && !e.contains("s3cr3t"), "{e}");
}

#[test]
fn store_wait_replicas_needs_a_redis_store() {
    let e = problems("store = \"memory://\"\nstore_wait_replicas = 1\n");
    assert!(
        e.starts_with("store_wait_replicas: only used with a Redis store"),
        "{e}"
    );
}
