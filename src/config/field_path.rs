//! Deserialization that reports the full path of the field at fault
//! (`scrape_configs[2].relabel_configs[0].regex`), for YAML and JSON alike. serde_yaml names
//! only the enclosing map when one of our types refuses a value, and serde_json names no
//! path at all, so the path is tracked here and the parser's partial prefix dropped.

use serde::de::DeserializeOwned;

/// A refused document: where, and the parser's message (with its line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `""` when the fault is the document itself (a syntax error, a wrong top-level type).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| field_error(e.path(), e.inner().to_string()))
}

pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| field_error(e.path(), e.inner().to_string()))
}

fn field_error(path: &serde_path_to_error::Path, message: String) -> FieldError {
    let path = path.to_string();
    let path = if path == "." { String::new() } else { path };
    // serde_yaml prefixes the part of the path it knows (`global: ...`); it is a prefix of
    // ours, so keep ours alone.
    let message = match message.split_once(": ") {
        Some((prefix, rest))
            if !path.is_empty() && is_path_prefix(prefix.trim_start_matches('.'), &path) =>
        {
            rest.to_string()
        }
        _ => message,
    };
    FieldError { path, message }
}

fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn paths_are_complete_and_not_repeated() {
        let e = from_yaml::<Doc>("items:\n  - n: 1\n  - n: x\n").unwrap_err();
        assert_eq!(e.path, "items[1].n");
        assert!(
            e.message
                .starts_with("invalid type: string \"x\", expected u32 at line 3"),
            "{e}"
        );
        let e = from_yaml::<Doc>("items:\n  - n: 1\n    m: 2\n").unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("items[0].m"));
        let e = from_json::<Doc>(r#"{"items": [{"n": -1}]}"#).unwrap_err();
        assert_eq!(e.path, "items[0].n");
        let e = from_yaml::<Doc>("items: [\n").unwrap_err();
        assert!(e.to_string().starts_with("items: did not find"), "{e}");
    }
}
