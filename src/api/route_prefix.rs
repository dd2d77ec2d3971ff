//! The route prefix (`--web.route-prefix`, by default the path of `--web.external-url`): every
//! endpoint is served under it, as behind a reverse proxy at `http://host/prom/`. Outside it
//! Prometheus answers 404, except `/` which redirects to the prefix, and the prefix itself
//! which redirects to the prefix with a trailing slash. Pure path logic: it never answers.

/// The route prefix Prometheus derives: `/` plus the prefix (given, or the external URL's
/// path) without surrounding slashes; `/` when there is none.
pub fn route_prefix(external_url: &str, flag: Option<&str>) -> String {
    let path = match flag {
        Some(p) => p,
        None => url_path(external_url),
    };
    format!("/{}", path.trim_matches('/'))
}

/// The path of a URL (`http://host:9090/prom/` → `/prom/`); empty when it has none.
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Where a request path leads under the prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed<'a> {
    /// An endpoint path (the prefix removed).
    Inner(&'a str),
    /// A redirect: status (301 or 302) and location.
    Redirect(u16, String),
    NotFound,
}

pub fn route<'a>(prefix: &str, path: &'a str) -> Routed<'a> {
    if prefix == "/" {
        return Routed::Inner(path);
    }
    if path == "/" {
        return Routed::Redirect(302, prefix.to_string());
    }
    if path == prefix {
        return Routed::Redirect(301, format!("{prefix}/"));
    }
    match path.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => Routed::Inner(rest),
        _ => Routed::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_comes_from_the_external_url_unless_given() {
        assert_eq!(route_prefix("", None), "/");
        assert_eq!(route_prefix("http://h:9090", None), "/");
        assert_eq!(route_prefix("http://h:9090/", None), "/");
        assert_eq!(route_prefix("http://h:9090/prom/", None), "/prom");
        assert_eq!(route_prefix("https://h/a/b?x=1", None), "/a/b");
        assert_eq!(route_prefix("http://h/prom/", Some("/other/")), "/other");
        assert_eq!(route_prefix("http://h/prom/", Some("")), "/");
        assert_eq!(route_prefix("", Some("x")), "/x");
    }

    #[test]
    fn routes_as_prometheus_2_42() {
        // Each checked against Prometheus 2.42 with --web.external-url=http://h/prom/.
        assert_eq!(route("/prom", "/"), Routed::Redirect(302, "/prom".into()));
        assert_eq!(
            route("/prom", "/prom"),
            Routed::Redirect(301, "/prom/".into())
        );
        assert_eq!(
            route("/prom", "/prom/api/v1/query"),
            Routed::Inner("/api/v1/query")
        );
        assert_eq!(route("/prom", "/prom/"), Routed::Inner("/"));
        assert_eq!(route("/prom", "/api/v1/query"), Routed::NotFound);
        assert_eq!(route("/prom", "/promx"), Routed::NotFound);
        assert_eq!(route("/prom", "/metrics"), Routed::NotFound);
        assert_eq!(route("/", "/metrics"), Routed::Inner("/metrics"));
    }
}
