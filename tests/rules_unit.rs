//! The rule files in config/rules/ and tests/rules/ and their unit tests, run by promcore's
//! own `test rules` / `check rules` and by Debian's promtool (Prometheus 2.42), which must
//! agree: both pass the shipped tests, both fail a copy whose expectations are wrong, both
//! refuse a broken rule file, and both accept or refuse the same template syntax.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn tools() -> [&'static str; 2] {
    [env!("CARGO_BIN_EXE_promcore"), "promtool"]
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn shipped_rule_tests_pass_in_promcore_and_promtool() {
    let file = repo().join("config/rules/node.test.yml");
    let file = file.to_str().unwrap();
    for tool in tools() {
        let o = run(tool, &["test", "rules", file]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(text(&o).contains("SUCCESS"), "{tool}: {}", text(&o));
    }
}

/// A copy of the tests with one expectation changed, next to a copy of the rules.
fn broken_copy(dir: &Path, from: &str, to: &str) -> String {
    std::fs::copy(repo().join("config/rules/node.yml"), dir.join("node.yml")).unwrap();
    let tests = std::fs::read_to_string(repo().join("config/rules/node.test.yml")).unwrap();
    assert!(tests.contains(from), "{from:?} not in the test file");
    let path = dir.join("node.test.yml");
    std::fs::write(&path, tests.replacen(from, to, 1)).unwrap();
    path.display().to_string()
}

#[test]
fn wrong_expectations_fail_in_both() {
    let cases = [
        // An annotation expanded differently.
        ("summary: \"CPU of a:9100 is 95% busy\"", "summary: \"CPU of a:9100 is 94% busy\""),
        // Firing one evaluation too early (`for` not honoured).
        ("      - eval_time: 6m\n        alertname: InstanceDown\n        exp_alerts: []", "      - eval_time: 6m\n        alertname: InstanceDown\n        exp_alerts:\n          - exp_labels: {severity: page, host: b, instance: \"b:9100\", job: node}"),
        // A recorded value.
        ("value: 0.0625", "value: 0.0626"),
    ];
    for (from, to) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = broken_copy(dir.path(), from, to);
        for tool in tools() {
            let o = run(tool, &["test", "rules", &file]);
            assert_eq!(o.status.code(), Some(1), "{tool} with {to:?}: {}", text(&o));
            assert!(text(&o).contains("FAILED"), "{tool}: {}", text(&o));
        }
    }
}

#[test]
fn check_rules_agrees_with_promtool() {
    let good = repo().join("config/rules/node.yml");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
    )
    .unwrap();
    let unknown_fn = dir.path().join("unknown.yml");
    std::fs::write(
        &unknown_fn,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        annotations: {s: '{{ nosuchfunction $value }}'}\n",
    )
    .unwrap();
    for tool in tools() {
        let o = run(tool, &["check", "rules", good.to_str().unwrap()]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(
            text(&o).contains("SUCCESS: 5 rules found"),
            "{tool}: {}",
            text(&o)
        );
        for f in [&bad, &unknown_fn] {
            let o = run(tool, &["check", "rules", f.to_str().unwrap()]);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{tool} {}: {}",
                f.display(),
                text(&o)
            );
            assert!(text(&o).contains("FAILED"), "{tool}: {}", text(&o));
        }
    }
    let o = run(
        tools()[0],
        &["check", "rules", unknown_fn.to_str().unwrap()],
    );
    assert!(
        text(&o).contains("groups[0].rules[0].annotations.s"),
        "the error names the field: {}",
        text(&o)
    );
}

#[test]
fn check_config_checks_the_rule_files_it_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::copy(
        repo().join("config/rules/node.yml"),
        dir.path().join("rules/node.yml"),
    )
    .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "rule_files: ['rules/*.yml']\nalerting:\n  alertmanagers:\n    - static_configs: [{targets: ['localhost:9093']}]\n").unwrap();
    for tool in tools() {
        let o = run(tool, &["check", "config", config.to_str().unwrap()]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(
            text(&o).contains("SUCCESS: 5 rules found"),
            "{tool}: {}",
            text(&o)
        );
    }
    std::fs::write(
        dir.path().join("rules/zz.yml"),
        "groups:\n  - name: g\n    rules:\n      - {record: 'bad name', expr: up}\n",
    )
    .unwrap();
    for tool in tools() {
        let o = run(tool, &["check", "config", config.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{tool}: {}", text(&o));
    }
}

#[test]
fn template_showcase_passes_in_promcore_and_promtool() {
    let file = repo().join("tests/rules/templates.test.yml");
    let file = file.to_str().unwrap();
    for tool in tools() {
        let o = run(tool, &["test", "rules", file]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(text(&o).contains("SUCCESS"), "{tool}: {}", text(&o));
    }
}

#[test]
fn template_showcase_with_a_wrong_expansion_fails_in_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/rules/templates.yml"),
        dir.path().join("templates.yml"),
    )
    .unwrap();
    let tests = std::fs::read_to_string(repo().join("tests/rules/templates.test.yml")).unwrap();
    let from = "vars: \"2\"";
    assert!(tests.contains(from), "{from:?} not in the test file");
    let path = dir.path().join("templates.test.yml");
    std::fs::write(&path, tests.replacen(from, "vars: \"1\"", 1)).unwrap();
    for tool in tools() {
        let o = run(tool, &["test", "rules", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{tool}: {}", text(&o));
        assert!(text(&o).contains("FAILED"), "{tool}: {}", text(&o));
    }
}

/// Template syntax that Go's parser (Prometheus 2.42) refuses or accepts at load time.
#[test]
fn template_syntax_is_refused_and_accepted_as_in_promtool() {
    let refused = [
        // A definition has its own scope: the preamble's variables are not in it.
        r#"{{ define "x" }}{{ $labels.job }}{{ end }}"#,
        r#"{{ with 1 }}a{{ else with 2 }}b{{ end }}"#,
        r#"{{ with 1 }}{{ else if 2 }}b{{ end }}{{ end }}"#,
        "{{ break }}",
        "{{ range $i, $v, $w := 1 }}{{ end }}",
        "{{ 1 | 2 }}",
        "{{ if 1 }}{{ end }}{{ end }}",
        r#"{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}"#,
        "{{/* c */ }}",
        "{{ if }}{{ end }}",
        "{{ $nosuch }}",
    ];
    let accepted = [
        // Both are checked only when the template runs.
        "{{ $x = 1 }}",
        r#"{{ template "nosuch" }}"#,
        r#"{{ 0x1F }} {{ 1_000 }} {{ 010 }} {{ 1e3 }} {{- /* c */ -}} {{ $end := 1 }}{{ $end }}"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, t) in refused.iter().chain(accepted.iter()).enumerate() {
        let file = dir.path().join(format!("t{i}.yml"));
        let rule = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        annotations: {{s: '{}'}}\n",
            t.replace('\'', "''")
        );
        std::fs::write(&file, rule).unwrap();
        let want = if i < refused.len() { 1 } else { 0 };
        for tool in tools() {
            let o = run(tool, &["check", "rules", file.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(want), "{tool} on {t:?}: {}", text(&o));
        }
    }
}
