//! Alert label and annotation templates: Go's `text/template` as Prometheus 2.42 runs rule
//! templates (`parse`: actions, pipelines, variables, `if`/`else if`, `with`, `range`,
//! `define`/`template`/`block`, trim markers, comments; `exec`: running them; `value`: Go's
//! rules for the values; `funcs`: Go's and Prometheus's functions). A template is parsed when
//! its rule loads, so an unknown function, an undefined variable or a syntax error is a
//! load-time error, as in Prometheus.
//!
//! Expansion is pure: `query` results come from the caller. When a template needs a query
//! whose result it was not given, expansion stops with `Expansion::NeedQuery`; the caller runs
//! the query and expands again with it (see `group`). This module never does I/O.

mod exec;
mod funcs;
mod parse;
mod value;

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

use exec::{Exec, Stop};
use parse::Tree;
use value::Val;

pub use funcs::{humanize, humanize1024, humanize_duration};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("template: {0}")]
    Parse(String),
    #[error("error executing template: {0}")]
    Exec(String),
}

/// A sample as `query` returns it to a template.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What a template may read.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// Results of `query` calls, by query text.
    pub queries: HashMap<String, Vec<QuerySample>>,
}

/// The outcome of one expansion.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    Done(String),
    /// The template calls `query` with this text and its result is not in `queries` yet.
    NeedQuery(String),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    tree: Tree,
}

/// The variables Prometheus defines before every rule template
/// (`{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}...`).
const PREAMBLE_VARS: &[&str] = &["$labels", "$externalLabels", "$externalURL", "$value"];

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            tree: parse::parse(text, PREAMBLE_VARS, funcs::FUNCTIONS)?,
        })
    }

    /// Expands with Prometheus's preamble variables: `$labels`, `$value`, `$externalLabels`,
    /// `$externalURL`, and `.` being `{Labels, ExternalLabels, ExternalURL, Value}`.
    pub fn expand(&self, data: &TemplateData) -> Result<Expansion, TemplateError> {
        let labels = Val::StrMap(data.labels.clone());
        let external = Val::StrMap(data.external_labels.clone());
        let url = Val::Str(data.external_url.clone());
        let value = Val::Float(data.value);
        let root = Val::Struct(vec![
            ("Labels", labels.clone()),
            ("ExternalLabels", external.clone()),
            ("ExternalURL", url.clone()),
            ("Value", value.clone()),
        ]);
        let mut ex = Exec {
            data,
            defs: &self.tree.defs,
            vars: vec![
                ("$".into(), root.clone()),
                ("$labels".into(), labels),
                ("$externalLabels".into(), external),
                ("$externalURL".into(), url),
                ("$value".into(), value),
            ],
            out: String::new(),
            depth: 0,
        };
        match ex.run(&self.tree.main, &root) {
            Ok(()) => Ok(Expansion::Done(ex.out)),
            Err(Stop::NeedQuery(q)) => Ok(Expansion::NeedQuery(q)),
            Err(Stop::Error(e)) => Err(TemplateError::Exec(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, data: &TemplateData) -> String {
        match Template::parse(t).unwrap().expand(data).unwrap() {
            Expansion::Done(s) => s,
            Expansion::NeedQuery(q) => panic!("needs {q}"),
        }
    }

    fn data() -> TemplateData {
        TemplateData {
            labels: [
                ("instance".to_string(), "h:9100".to_string()),
                ("job".into(), "node".into()),
            ]
            .into_iter()
            .collect(),
            value: 1234567.0,
            external_labels: [("cluster".to_string(), "eu".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn variables_pipelines_and_functions() {
        let d = data();
        assert_eq!(
            expand("{{ $labels.instance }} is {{ $value }}", &d),
            "h:9100 is 1.234567e+06"
        );
        assert_eq!(expand("{{ $value | humanize }}", &d), "1.235M");
        assert_eq!(expand("{{ humanize1024 2048 }}", &d), "2ki");
        assert_eq!(expand("{{ humanizeDuration 3725 }}", &d), "1h 2m 5s");
        assert_eq!(expand("{{ humanizeDuration 0.25 }}", &d), "250ms");
        assert_eq!(expand("{{ humanizePercentage 0.1234 }}", &d), "12.34%");
        assert_eq!(
            expand("{{ humanizeTimestamp 1435065584.128 }}", &d),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            expand(
                "{{ .Labels.job | toUpper }} {{ title \"a quick fox\" }}",
                &d
            ),
            "NODE A Quick Fox"
        );
        assert_eq!(
            expand("{{ printf \"%.2f %s %d\" 3.14159 \"x\" 7 }}", &d),
            "3.14 x 7"
        );
        assert_eq!(expand("{{ $externalLabels.cluster }}", &d), "eu");
        assert_eq!(
            expand("{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}", &d),
            "big"
        );
        assert_eq!(expand("{{ stripPort $labels.instance }}", &d), "h");
        assert_eq!(
            expand("{{ reReplaceAll \"(h):.*\" \"$1\" $labels.instance }}", &d),
            "h"
        );
    }

    #[test]
    fn query_results_come_from_the_caller() {
        let mut d = data();
        let t = Template::parse("{{ with query \"up\" }}{{ . | first | value }} {{ . | first | label \"job\" }}{{ end }}").unwrap();
        assert_eq!(t.expand(&d).unwrap(), Expansion::NeedQuery("up".into()));
        d.queries.insert(
            "up".into(),
            vec![QuerySample {
                labels: [("job".to_string(), "a".to_string())].into_iter().collect(),
                value: 1.0,
            }],
        );
        assert_eq!(t.expand(&d).unwrap(), Expansion::Done("1 a".into()));
        let r = Template::parse("{{ range query \"up\" }}{{ .Labels.job }}={{ .Value }};{{ end }}")
            .unwrap();
        assert_eq!(r.expand(&d).unwrap(), Expansion::Done("a=1;".into()));
    }

    fn error_of(t: &str, data: &TemplateData) -> String {
        match Template::parse(t).unwrap().expand(data) {
            Err(TemplateError::Exec(e)) => e,
            other => panic!("{t}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn external_url_and_path_prefix() {
        let mut d = data();
        d.external_url = "http://prom.example.com:9090/prom".into();
        assert_eq!(
            expand("{{ externalURL }} {{ pathPrefix }} {{ $externalURL }} {{ .ExternalURL }}", &d),
            "http://prom.example.com:9090/prom /prom http://prom.example.com:9090/prom http://prom.example.com:9090/prom"
        );
        d.external_url = "http://h:9090".into();
        assert_eq!(expand("[{{ pathPrefix }}]", &d), "[]");
    }

    #[test]
    fn go_kinds_are_kept_apart() {
        let d = data();
        // `1000` is an int constant, `$value` a float64: Go refuses to compare them.
        assert!(error_of("{{ gt $value 1000 }}", &d).contains("incompatible types for comparison"));
        assert_eq!(
            expand("{{ gt $value 1000.0 }} {{ eq 1 1 2 }}", &d),
            "true true"
        );
        assert!(error_of("{{ toUpper 1 }}", &d).contains("expected string; got int"));
        assert_eq!(
            expand("{{ printf \"%d|%v|%d\" 3 3.0 3.0 }}", &d),
            "3|3|%!d(float64=3)"
        );
        // A missing label is the empty string (`missingkey=zero`), not `<no value>`.
        assert_eq!(
            expand("[{{ $labels.nosuch }}][{{ index $labels \"nosuch\" }}]", &d),
            "[][]"
        );
        assert_eq!(expand("{{ (args 1).arg1 }}", &d), "<no value>");
    }

    #[test]
    fn scopes_definitions_and_control_flow() {
        let d = data();
        assert_eq!(
            expand(
                "{{ $x := 1 }}{{ with 5 }}{{ $x = . }}{{ $x := 9 }}{{ end }}{{ $x }}",
                &d
            ),
            "5"
        );
        assert_eq!(
            expand("{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" $labels.job }}{{ template \"t\" }}", &d),
            "<node><<no value>>"
        );
        assert_eq!(
            expand(
                "{{ if eq 1 2 }}a{{ else if eq 1 1 }}b{{ else }}c{{ end }}",
                &d
            ),
            "b"
        );
        assert_eq!(
            expand("{{ range $k, $v := $labels }}{{ if eq $k \"job\" }}{{ break }}{{ end }}{{ $k }}={{ $v }} {{ end }}", &d),
            "instance=h:9100 "
        );
        assert_eq!(expand("x {{- 1 -}}\n y {{/* gone */}}z", &d), "x1y z");
        assert_eq!(
            expand("{{ $x := 0 }}{{ range $x = $labels }}{{ end }}{{ $x }}", &d),
            "node"
        );
        assert!(error_of(
            "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
            &d
        )
        .contains("maximum template depth"));
        assert!(error_of("{{ template \"nosuch\" }}", &d).contains("no such template"));
        // `and` stops at the first false argument, so the index is never evaluated.
        assert_eq!(expand("{{ and false (index $labels 1) }}", &d), "false");
    }

    #[test]
    fn prometheus_functions_with_go_semantics() {
        let d = data();
        assert_eq!(
            expand("{{ toTime 1435065584.128 }}", &d),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert!(error_of("{{ toTime \"NaN\" }}", &d).contains("NaN or Inf"));
        assert_eq!(expand("{{ parseDuration \"1m30s\" }}", &d), "90");
        assert!(Template::parse("{{ parseDuration \"x\" }}").is_ok());
        assert!(error_of("{{ parseDuration \"x\" }}", &d).contains("not a valid duration"));
        assert_eq!(
            expand("{{ stripPort \"[::1]:80\" }} {{ stripPort \"::1\" }} {{ stripDomain \"a.b:1\" }} {{ stripDomain \"[::1]:1\" }}", &d),
            "::1 ::1 a:1 [::1]:1"
        );
        assert_eq!(
            expand(
                "{{ graphLink \"a b\" }} {{ tableLink \"x{y=\\\"1\\\"}\" }}",
                &d
            ),
            "/graph?g0.expr=a+b&g0.tab=0 /graph?g0.expr=x%7By%3D%221%22%7D&g0.tab=1"
        );
        assert_eq!(
            expand("{{ humanizePercentage \"0.5\" }} {{ title \"don't\" }}", &d),
            "50% Don'T"
        );
    }

    #[test]
    fn unknown_functions_and_bad_syntax_fail_to_parse() {
        assert!(Template::parse("{{ $undefined }}").is_err());
        assert!(Template::parse("{{ else }}").is_err());
        assert!(Template::parse("{{ now }}").is_err());
        assert!(Template::parse("{{ nosuch 1 }}").is_err());
        assert!(Template::parse("{{ if 1 }}x").is_err());
        assert!(Template::parse("{{ $labels.x ").is_err());
        assert!(Template::parse("plain text").is_ok());
    }
}
