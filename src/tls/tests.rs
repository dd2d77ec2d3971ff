//! Loading `tls_config` files: certificates made here with rcgen.

use super::*;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("client.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), leaf_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

fn load(cfg: TlsConfig) -> Result<TlsClient, TlsSetupError> {
    TlsClient::load(&cfg)
}

#[test]
fn usable_files_load() {
    let pki = Pki::new();
    let client = load(TlsConfig {
        ca_file: pki.file("ca.pem"),
        cert_file: pki.file("client.pem"),
        key_file: pki.file("client.key"),
        server_name: "node.example".into(),
        ..TlsConfig::default()
    })
    .unwrap();
    assert_eq!(client.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(client.config.client_auth_cert_resolver.has_certs());
    assert!(client.server_name.is_some());
    // The system pool, and no verification at all, need no file.
    assert!(load(TlsConfig::default()).is_ok());
    assert!(load(TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    })
    .is_ok());
}

#[test]
fn unusable_files_name_the_field_in_go_words() {
    let pki = Pki::new();
    let missing = pki.file("missing.pem");
    let e = load(TlsConfig {
        ca_file: missing.clone(),
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "ca_file");
    assert_eq!(
        e.reason,
        format!(
            "unable to load specified CA cert {missing}: open {missing}: no such file or directory"
        )
    );
    let e = load(TlsConfig {
        ca_file: pki.file("garbage.pem"),
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert_eq!(
        e.reason,
        format!(
            "unable to use specified CA cert {}",
            pki.file("garbage.pem")
        )
    );
    let e = load(TlsConfig {
        cert_file: pki.file("client.pem"),
        key_file: missing.clone(),
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "key_file");
    assert!(
        e.reason
            .starts_with("unable to use specified client cert ("),
        "{}",
        e.reason
    );
    // A certificate whose key is another one's.
    let e = load(TlsConfig {
        cert_file: pki.file("client.pem"),
        key_file: pki.file("garbage.pem"),
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "key_file");
}

#[test]
fn versions() {
    let only13 = load(TlsConfig {
        min_version: Some(TlsVersion::Tls13),
        ..TlsConfig::default()
    })
    .unwrap();
    assert!(only13
        .config
        .crypto_provider()
        .cipher_suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS13));
    let e = load(TlsConfig {
        min_version: Some(TlsVersion::Tls13),
        max_version: Some(TlsVersion::Tls12),
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "max_version");
}
