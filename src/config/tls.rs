//! `tls_config` of a scrape job or an Alertmanager entry, with Prometheus 2.42's fields
//! (`ca_file`, `cert_file`, `key_file`, `server_name`, `insecure_skip_verify`, `min_version`,
//! `max_version`) and its structural checks. Relative file paths are made relative to the
//! configuration file's directory, as Prometheus's `SetDirectory` does.
//!
//! Pure: it never opens the files (the `tls` module loads them, and the configuration loader
//! asks it to, so that an unusable file refuses the configuration with the field's path).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA bundle that verifies the server; the system pool when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// PEM client certificate (chain) for mutual TLS, with `key_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    /// The name sent in SNI and checked against the certificate; the target's host when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub insecure_skip_verify: bool,
    /// Prometheus's default is TLS 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// Prometheus's `TLSConfig.Validate`, plus what promcore's TLS library cannot do: the
    /// error is (field relative to `tls_config`, reason).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.cert_file.is_empty() && self.key_file.is_empty() {
            return Err((
                "cert_file",
                format!(
                    "client cert file {:?} specified without client key file",
                    self.cert_file
                ),
            ));
        }
        if !self.key_file.is_empty() && self.cert_file.is_empty() {
            return Err((
                "key_file",
                format!(
                    "client key file {:?} specified without client cert file",
                    self.key_file
                ),
            ));
        }
        if let Some(max) = self.max_version {
            if max < TlsVersion::Tls12 {
                return Err((
                    "max_version",
                    format!("{max} is not supported: promcore speaks TLS 1.2 and TLS 1.3 only"),
                ));
            }
        }
        Ok(())
    }

    /// Joins relative file names to `dir` (the configuration file's directory).
    pub fn set_directory(&mut self, dir: &Path) {
        for f in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            if !f.is_empty() && Path::new(f.as_str()).is_relative() {
                *f = dir.join(f.as_str()).to_string_lossy().into_owned();
            }
        }
    }
}

/// `TLS10` ... `TLS13`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    const NAMES: [(&'static str, TlsVersion); 4] = [
        ("TLS10", TlsVersion::Tls10),
        ("TLS11", TlsVersion::Tls11),
        ("TLS12", TlsVersion::Tls12),
        ("TLS13", TlsVersion::Tls13),
    ];
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::NAMES
            .iter()
            .find(|(_, v)| v == self)
            .map_or("", |(n, _)| n);
        f.write_str(name)
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown TLS version: {s}")))
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TlsConfig, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn fields_and_versions() {
        let c = parse("{ca_file: ca.pem, server_name: n, insecure_skip_verify: true, min_version: TLS13, max_version: TLS13}").unwrap();
        assert_eq!(c.min_version, Some(TlsVersion::Tls13));
        assert!(c.insecure_skip_verify);
        assert!(c.validate().is_ok());
        assert!(parse("{min_version: TLS14}")
            .unwrap_err()
            .contains("unknown TLS version: TLS14"));
        assert!(parse("{cafile: x}").is_err(), "unknown fields are refused");
        // Prometheus 2.42 has no inline `ca`.
        assert!(parse("{ca: x}").is_err());
        let back = serde_yaml::to_string(&c).unwrap();
        assert!(back.contains("min_version: TLS13"), "{back}");
    }

    #[test]
    fn checks_name_the_field_with_promtool_words() {
        let e = parse("{cert_file: c}").unwrap().validate().unwrap_err();
        assert_eq!(
            e,
            (
                "cert_file",
                "client cert file \"c\" specified without client key file".into()
            )
        );
        let e = parse("{key_file: k}").unwrap().validate().unwrap_err();
        assert_eq!(e.0, "key_file");
        let e = parse("{max_version: TLS11}")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.0, "max_version");
    }

    #[test]
    fn relative_files_follow_the_configuration() {
        let mut c = parse("{ca_file: ca.pem, cert_file: /abs/c.pem, key_file: k.pem}").unwrap();
        c.set_directory(Path::new("/etc/promcore"));
        assert_eq!(c.ca_file, "/etc/promcore/ca.pem");
        assert_eq!(c.cert_file, "/abs/c.pem");
        assert_eq!(c.key_file, "/etc/promcore/k.pem");
    }
}
