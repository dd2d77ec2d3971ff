//! The file_sd targets file that points the servers under test at the simulated targets.
//!
//! One target group, `[{"targets": ["127.0.0.1:20000", ...], "labels": {...}}]`, in the
//! shape Prometheus's (and VictoriaMetrics's, and promcore's) `file_sd_configs` read. It is
//! written to a temporary file and renamed, so a watching server never reads half a list.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
#[error("writing the targets file {path}: {source}")]
pub struct FileSdError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Labels every simulated target carries, so the servers' data says where it came from.
pub const GROUP_LABELS: [(&str, &str); 1] = [("simulator", "loadgen")];

/// The JSON document for `targets`, in target order.
pub fn render(targets: &[SocketAddr]) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = GROUP_LABELS
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect();
    let doc = serde_json::json!([{
        "targets": targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "labels": labels,
    }]);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes `render(targets)` to `path` atomically (temporary file in the same directory,
/// then rename).
pub fn write(path: &Path, targets: &[SocketAddr]) -> Result<(), FileSdError> {
    let fail = |source| FileSdError {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(render(targets).as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_document() {
        let targets: Vec<SocketAddr> = vec![
            "127.0.0.1:20000".parse().unwrap(),
            "127.0.0.2:20000".parse().unwrap(),
        ];
        assert_eq!(
            render(&targets),
            r#"[
  {
    "labels": {
      "simulator": "loadgen"
    },
    "targets": [
      "127.0.0.1:20000",
      "127.0.0.2:20000"
    ]
  }
]
"#
        );
    }

    #[test]
    fn written_file_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.json");
        let targets: Vec<SocketAddr> = (0..3)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 20000 + i)))
            .collect();
        write(&path, &targets).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc[0]["targets"][2], "127.0.0.1:20002");
        assert_eq!(doc[0]["labels"]["simulator"], "loadgen");
        assert!(!dir.path().join("targets.json.tmp").exists());
        let err = write(&dir.path().join("missing/t.json"), &targets).unwrap_err();
        assert!(err.to_string().contains("missing/t.json"), "{err}");
    }
}
