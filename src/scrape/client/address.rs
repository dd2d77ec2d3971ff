//! From a target's `host:port` to the socket addresses to dial. IP literals and `localhost`
//! are answered without a lookup; other names go to the system resolver on glommio's
//! blocking-thread pool, because `getaddrinfo` blocks and the executor must not.
//!
//! It never connects and never caches: a name is resolved each time a connection is opened,
//! which with kept-alive connections is rare.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::error::{os_reason, RequestError};

/// Go's default ports for `http://host/...` and `https://host/...` without a port.
pub const HTTP_PORT: u16 = 80;
pub const HTTPS_PORT: u16 = 443;

/// What an address names before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// Ready to dial.
    Addrs(Vec<SocketAddr>),
    /// A host name for the resolver.
    Name(&'a str, u16),
}

/// The host of `host:port`, `[v6]:port` or a bare host, without brackets: the name TLS
/// sends and verifies.
pub fn host(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match address.split_once(':') {
        Some((h, p)) if !p.contains(':') => h,
        _ => address,
    }
}

/// Splits `host:port`, `[v6]:port` or a bare host (`default_port`).
pub fn parse(address: &str, default_port: u16) -> Result<Endpoint<'_>, RequestError> {
    let invalid = |why: &str| RequestError::InvalidAddress(format!("address {address}: {why}"));
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("missing ']' in address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| invalid("unexpected characters after ']'"))?,
            ),
        };
        let ip: Ipv6Addr = host.parse().map_err(|_| invalid("invalid IPv6 address"))?;
        (HostKind::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match address.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err(invalid("too many colons in address")),
            Some((h, p)) => (h, Some(p)),
            None => (address, None),
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let kind = match host.parse::<Ipv4Addr>() {
            Ok(ip) => HostKind::Ip(IpAddr::V4(ip)),
            Err(_) if host.eq_ignore_ascii_case("localhost") => HostKind::Localhost,
            Err(_) => HostKind::Name(host),
        };
        (kind, port)
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| invalid("invalid port"))?,
    };
    Ok(match host {
        HostKind::Ip(ip) => Endpoint::Addrs(vec![SocketAddr::new(ip, port)]),
        // Go's resolver reads /etc/hosts, which on Debian lists ::1 after 127.0.0.1; exporters
        // listening on `localhost` bind whichever resolves first, so try both in that order.
        HostKind::Localhost => Endpoint::Addrs(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]),
        HostKind::Name(name) => Endpoint::Name(name, port),
    })
}

enum HostKind<'a> {
    Ip(IpAddr),
    Localhost,
    Name(&'a str),
}

/// The addresses to dial for `address` (`default_port` when it has none), in the resolver's order. Must run in a glommio
/// executor when `address` holds a host name.
pub async fn resolve(address: &str, default_port: u16) -> Result<Vec<SocketAddr>, RequestError> {
    match parse(address, default_port)? {
        Endpoint::Addrs(addrs) => Ok(addrs),
        Endpoint::Name(host, port) => lookup(host, port).await,
    }
}

/// Asks the system resolver on glommio's blocking-thread pool.
pub async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, RequestError> {
    let owned = host.to_string();
    let found = glommio::executor()
        .spawn_blocking(move || {
            (owned.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>())
        })
        .await;
    let lookup_error = |reason: String| RequestError::Lookup {
        host: host.to_string(),
        reason,
    };
    match found {
        Ok(addrs) if addrs.is_empty() => Err(lookup_error("no such host".into())),
        Ok(addrs) => Ok(addrs),
        Err(e) => Err(lookup_error(os_reason(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(a: &str) -> Vec<String> {
        match parse(a, HTTP_PORT).unwrap() {
            Endpoint::Addrs(v) => v.iter().map(ToString::to_string).collect(),
            Endpoint::Name(h, p) => vec![format!("name {h} {p}")],
        }
    }

    #[test]
    fn literals_localhost_and_names() {
        assert_eq!(addrs("127.0.0.1:9100"), ["127.0.0.1:9100"]);
        assert_eq!(addrs("[::1]:9100"), ["[::1]:9100"]);
        assert_eq!(addrs("[::1]"), ["[::1]:80"]);
        assert_eq!(addrs("10.1.2.3"), ["10.1.2.3:80"]);
        assert_eq!(addrs("localhost:9100"), ["127.0.0.1:9100", "[::1]:9100"]);
        assert_eq!(addrs("node-1.example:9100"), ["name node-1.example 9100"]);
        assert!(matches!(
            parse("h", HTTPS_PORT),
            Ok(Endpoint::Name("h", 443))
        ));
        for (a, h) in [
            ("[::1]:9100", "::1"),
            ("n.example:1", "n.example"),
            ("n", "n"),
            ("1.2.3.4:5", "1.2.3.4"),
        ] {
            assert_eq!(host(a), h);
        }
    }

    #[test]
    fn malformed_addresses() {
        for a in [
            "::1:9100", "[::1", "[::1]x", "[nope]:1", ":9100", "h:port", "h:70000",
        ] {
            assert!(
                matches!(parse(a, HTTP_PORT), Err(RequestError::InvalidAddress(_))),
                "{a}"
            );
        }
    }
}
