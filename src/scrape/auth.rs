//! The `Authorization` header of a job's scrapes, from `basic_auth` or `authorization`,
//! reading `*_file` secrets when a loop starts (so a rotated file is picked up on reload).
//! It never logs a secret.

use crate::config::scrape::{Authorization, BasicAuth, ScrapeConfig};

/// The header value, `None` when the job has no credentials, or an error naming the file that
/// could not be read.
pub fn authorization_header(cfg: &ScrapeConfig) -> Result<Option<String>, String> {
    credentials_header(cfg.basic_auth.as_ref(), cfg.authorization.as_ref())
}

/// The header value for `basic_auth` or `authorization` (as a scrape job or an
/// Alertmanager configures them); `None` for neither.
pub fn credentials_header(
    basic_auth: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
) -> Result<Option<String>, String> {
    if let Some(b) = basic_auth {
        let user = if b.username_file.is_empty() {
            b.username.clone()
        } else {
            read_secret(&b.username_file)?
        };
        let password = if b.password_file.is_empty() {
            b.password.expose().to_string()
        } else {
            read_secret(&b.password_file)?
        };
        return Ok(Some(format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes())
        )));
    }
    if let Some(a) = authorization {
        let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
        let credentials = if a.credentials_file.is_empty() {
            a.credentials.expose().to_string()
        } else {
            read_secret(&a.credentials_file)?
        };
        return Ok(Some(format!("{kind} {credentials}")));
    }
    Ok(None)
}

/// A secret file's content without its trailing newline, as Prometheus trims it.
fn read_secret(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("unable to read secret file {path}: {e}"))
}

/// Standard base64 with padding (RFC 4648), for HTTP basic authentication.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }
}
