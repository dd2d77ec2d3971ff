//! A TLS failure worded as Go's `crypto/tls` and `crypto/x509` word it, since that text is
//! what Prometheus shows in `lastError` and in the notifier's log, and users compare the two
//! servers. Pure: it only translates rustls's errors.

use std::io;

use rustls::{AlertDescription, CertificateError};

/// An I/O error of a TLS connection (handshake or later) as Go would print it: rustls's own
/// error when futures-rustls wrapped one, else the OS's.
pub fn io_reason(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls_reason(tls),
        None if e.kind() == io::ErrorKind::UnexpectedEof => "EOF".into(),
        None => crate::scrape::client::os_reason(e),
    }
}

/// One rustls error in Go's words (Go 1.19, which Debian's Prometheus 2.42 is built with).
pub fn tls_reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => certificate_reason(c),
        rustls::Error::AlertReceived(alert) => format!("remote error: tls: {}", alert_name(*alert)),
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "tls: first record does not look like a TLS handshake".into()
        }
        other => format!("tls: {other}"),
    }
}

fn certificate_reason(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            // Go lists the certificate's names of the kind it checked: DNS names for a host
            // name, IP addresses for an address.
            let want_ip = matches!(expected, rustls::pki_types::ServerName::IpAddress(_));
            let names: Vec<&str> = presented
                .iter()
                .filter(|p| p.starts_with("IpAddress(") == want_ip)
                .map(|p| presented_name(p))
                .collect();
            format!(
                "x509: certificate is valid for {}, not {}",
                names.join(", "),
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => "x509: certificate is not valid for the name".into(),
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        other => format!("x509: {other:?}"),
    }
}

/// `DnsName("localhost")` / `IpAddress(127.0.0.1)` (webpki's debug form) to the bare name.
fn presented_name(p: &str) -> &str {
    p.strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            p.strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        })
        .unwrap_or(p)
}

/// Go's names of the alerts a peer sends when it refuses us.
fn alert_name(a: AlertDescription) -> String {
    match a {
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::UnknownCA => "unknown certificate authority".into(),
        AlertDescription::CertificateRequired => "certificate required".into(),
        AlertDescription::HandshakeFailure => "handshake failure".into(),
        AlertDescription::ProtocolVersion => "protocol version not supported".into(),
        AlertDescription::UnrecognisedName => "unrecognized name".into(),
        AlertDescription::NoApplicationProtocol => "no application protocol".into(),
        AlertDescription::DecryptError => "error decrypting message".into(),
        AlertDescription::InternalError => "internal error".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    #[test]
    fn go_words() {
        assert_eq!(
            tls_reason(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "x509: certificate signed by unknown authority"
        );
        let wrong_name = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("wrong.example").unwrap().to_owned(),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        };
        assert_eq!(
            tls_reason(&rustls::Error::InvalidCertificate(wrong_name)),
            "x509: certificate is valid for localhost, not wrong.example"
        );
        assert_eq!(
            tls_reason(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            "remote error: tls: certificate required"
        );
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        );
        assert_eq!(
            io_reason(&wrapped),
            "x509: certificate has expired or is not yet valid"
        );
    }
}
