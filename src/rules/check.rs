//! `promcore check config FILE...` and `promcore check rules FILE...`: promtool's checks and
//! its output (`Checking FILE`, `  SUCCESS: N rules found`, `  FAILED:` and the error), exit
//! status 1 when a file fails. The configuration check also checks the rule files it names.
//!
//! Reads files and writes the report; never starts a server.

use std::io::Write;
use std::path::Path;

use crate::config::Config;

use super::file::{expand_globs, load_file};

/// Checks rule files; returns the exit status.
pub fn check_rules(files: &[String], out: &mut impl Write, err: &mut impl Write) -> u8 {
    if files.is_empty() {
        let _ = writeln!(err, "usage: promcore check rules FILE...");
        return 2;
    }
    let mut failed = false;
    for f in files {
        failed |= !check_rule_file(Path::new(f), out, err);
        let _ = writeln!(out);
    }
    u8::from(failed)
}

fn check_rule_file(path: &Path, out: &mut impl Write, err: &mut impl Write) -> bool {
    let _ = writeln!(out, "Checking {}", path.display());
    match load_file(path) {
        Ok(groups) => {
            let n: usize = groups.iter().map(|g| g.rules.len()).sum();
            let _ = writeln!(out, "  SUCCESS: {n} rules found");
            true
        }
        Err(e) => {
            let _ = writeln!(err, "  FAILED:");
            let _ = writeln!(err, "{e}");
            false
        }
    }
}

/// Checks configuration files and the rule files they name; returns the exit status.
pub fn check_config(files: &[String], out: &mut impl Write, err: &mut impl Write) -> u8 {
    if files.is_empty() {
        let _ = writeln!(err, "usage: promcore check config FILE...");
        return 2;
    }
    let mut failed = false;
    for f in files {
        let path = Path::new(f);
        let _ = writeln!(out, "Checking {f}");
        let config = match Config::load(path).and_then(|c| c.check_client_cert_files().map(|()| c))
        {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(err, "  FAILED: {e}");
                let _ = writeln!(out);
                failed = true;
                continue;
            }
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let rule_files = match expand_globs(base, &config.rule_files) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "  FAILED: {e}");
                failed = true;
                continue;
            }
        };
        if rule_files.is_empty() {
            let _ = writeln!(out, " SUCCESS: {f} is valid prometheus config file syntax");
        } else {
            let _ = writeln!(out, "  SUCCESS: {} rule files found", rule_files.len());
            let _ = writeln!(out, " SUCCESS: {f} is valid prometheus config file syntax");
        }
        let _ = writeln!(out);
        for rf in rule_files {
            failed |= !check_rule_file(&rf, out, err);
            let _ = writeln!(out);
        }
    }
    u8::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_like_promtool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.yml"),
            "groups:\n  - name: g\n    rules:\n      - {record: a:b, expr: up}\n      - {alert: A, expr: up == 0}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bad.yml"),
            "groups:\n  - name: g\n    rules:\n      - {record: a, expr: 'up +'}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("p.yml"), "rule_files: ['r.yml']\n").unwrap();
        let f = |n: &str| dir.path().join(n).display().to_string();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_rules(&[f("r.yml")], &mut out, &mut err), 0);
        assert!(String::from_utf8_lossy(&out).contains("  SUCCESS: 2 rules found"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_rules(&[f("bad.yml")], &mut out, &mut err), 1);
        assert!(String::from_utf8_lossy(&err).contains("groups[0].rules[0].expr"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            check_config(&[f("p.yml")], &mut out, &mut err),
            0,
            "{}",
            String::from_utf8_lossy(&err)
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("  SUCCESS: 1 rule files found"), "{text}");
        assert!(text.contains("  SUCCESS: 2 rules found"), "{text}");
    }
}
