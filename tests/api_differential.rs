//! The differential test of the HTTP API: Prometheus 2.42 (Debian's `/usr/bin/prometheus`) and
//! the server under test scrape the same two targets (fixed bodies, same configuration) until
//! both hold the same data; then a fixed list of requests — every endpoint, GET and POST forms,
//! Grafana's requests, error cases — goes to both, and status code, content type and body are
//! compared, JSON field by field.
//!
//! Only what must differ is normalised (scrape timestamps and durations, build and runtime
//! values, paths, order where Prometheus leaves it unspecified), each normaliser saying why.
//! Where Prometheus 3 deliberately answers differently from 2.42 the case carries a
//! [`Prom3`] note: the server under test is then checked against Prometheus 3's answer and the
//! reason is printed. Where promcore still differs for another reason, the case is listed in
//! [`KnownGap`]: the comparison is relaxed as the note says and the gap is printed, so it stays
//! visible until fixed.
//!
//! The request list is data (`cases()`): adding a request is adding a line.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::http;
use common::{free_port, urlencode, wait_until, Binary, Reply, Server, TestTarget, PATIENCE};
use serde_json::Value;

const ALPHA: &str = "# HELP g_temp A gauge.
# TYPE g_temp gauge
g_temp{room=\"a\"} 1.5
g_temp{room=\"b\"} -2
g_temp{room=\"c\"} 1e-7
# HELP c_req_total Requests.
# TYPE c_req_total counter
c_req_total{code=\"200\",method=\"get\"} 10
c_req_total{code=\"500\",method=\"get\"} 1
c_req_total{code=\"200\",method=\"post\"} 3
# HELP h_lat_seconds Latency.
# TYPE h_lat_seconds histogram
h_lat_seconds_bucket{le=\"0.1\"} 1
h_lat_seconds_bucket{le=\"1\"} 5
h_lat_seconds_bucket{le=\"+Inf\"} 6
h_lat_seconds_sum 3.5
h_lat_seconds_count 6
# HELP s_q_seconds A summary.
# TYPE s_q_seconds summary
s_q_seconds{quantile=\"0.5\"} 0.2
s_q_seconds{quantile=\"0.9\"} 0.8
s_q_seconds_sum 10
s_q_seconds_count 20
untyped_x 42
big_value 1e22
nan_value NaN
inf_value +Inf
";

const BETA: &str = "# HELP g_temp A gauge.
# TYPE g_temp gauge
g_temp{room=\"a\"} 3
# HELP other_metric Other things, \\\\ escaped\\nnewline.
# TYPE other_metric gauge
other_metric{path=\"/x\"} 7
other_metric{path=\"/y\"} 0.25
";

/// How a case's answers are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Norm {
    /// Byte-equal text (non-JSON) or equal JSON.
    Exact,
    /// `data` is an array whose order Prometheus leaves unspecified (series, targets/metadata).
    SortData,
    /// `data.result` is an instant vector without `sort`/`topk`: order unspecified.
    SortResult,
    /// `/metadata` with a `limit`: Go picks which metrics by map order, so only the number
    /// of metrics (and that each has entries) is compared.
    MetadataCount,
    /// `/targets`: scrape times, durations and `globalUrl` (built from the host name) differ.
    Targets,
    /// `/status/tsdb`: chunk counts and the head's time range depend on scrape timing; ties in
    /// the top lists may be broken differently.
    Tsdb,
    /// An error message listing series in Go's map order: compared as a multiset of
    /// characters.
    ErrorAnyOrder,
    /// `/status/flags`: promcore has its own, smaller flag set (no alertmanager, agent, rule,
    /// remote-storage flags; `--shards`), so the flags both servers have are compared.
    Flags,
    /// `/federate` text: sample timestamps (each server's own scrape times) are dropped;
    /// lines are otherwise compared in order.
    FederateText,
    /// Status pages whose values describe the process (build, runtime, flags, config): only
    /// the keys Prometheus 2.42 has are compared, and their JSON types.
    Keys,
}

/// Prometheus 3 answers this request differently from 2.42, on purpose.
#[derive(Clone, Copy, Debug)]
struct Prom3 {
    status: u16,
    reason: &'static str,
}

/// promcore differs from Prometheus here for a reason that is not Prometheus 3's; the
/// comparison is reduced to status code, content type and `errorType`.
#[derive(Clone, Copy, Debug)]
struct KnownGap {
    reason: &'static str,
}

#[derive(Clone, Debug)]
struct Case {
    method: &'static str,
    path: String,
    /// A urlencoded form body (POST).
    body: Option<String>,
    norm: Norm,
    /// An `Origin` header to send (CORS).
    origin: Option<&'static str>,
    prom3: Option<Prom3>,
    gap: Option<KnownGap>,
    /// An `Accept-Encoding` header to send; the body is compared decompressed.
    accept_encoding: Option<&'static str>,
}

fn get(path: impl Into<String>, norm: Norm) -> Case {
    Case {
        method: "GET",
        path: path.into(),
        body: None,
        norm,
        origin: None,
        prom3: None,
        gap: None,
        accept_encoding: None,
    }
}

fn post(path: impl Into<String>, body: impl Into<String>, norm: Norm) -> Case {
    Case {
        method: "POST",
        path: path.into(),
        body: Some(body.into()),
        norm,
        origin: None,
        prom3: None,
        gap: None,
        accept_encoding: None,
    }
}

fn method(m: &'static str, path: &str) -> Case {
    Case {
        method: m,
        path: path.to_string(),
        body: Some(String::new()),
        norm: Norm::Exact,
        origin: None,
        prom3: None,
        gap: None,
        accept_encoding: None,
    }
}

impl Case {
    fn prom3(mut self, status: u16, reason: &'static str) -> Case {
        self.prom3 = Some(Prom3 { status, reason });
        self
    }
    fn origin(mut self, origin: &'static str) -> Case {
        self.origin = Some(origin);
        self
    }
    fn encoding(mut self, accept: &'static str) -> Case {
        self.accept_encoding = Some(accept);
        self
    }
    // No request is a known gap today; the mechanism stays for the next one found.
    #[allow(dead_code)]
    fn gap(mut self, reason: &'static str) -> Case {
        self.gap = Some(KnownGap { reason });
        self
    }
}

/// Expressions that do not parse, one of each common error, with Prometheus's message and
/// position expected for each.
const PARSE_ERRORS: &[&str] = &[
    "",
    "foo(",
    "sum(",
    "rate(g_temp)",
    "sum(\n  rate(g_temp)\n)",
    "histogram_quantile(0.9, g_temp[5m])",
    "round(g_temp, g_temp)",
    "1 +",
    "g_temp ==bool",
    "g_temp{",
    "g_temp{room=\"a\"",
    "g_temp[5m",
    "sum(g_temp) by",
    ")",
    "g_temp)",
    "g_temp}",
    "g_temp other_metric",
    "rate(g_temp[5m], 1)",
    "label_join(g_temp, 1)",
    "nofunc(g_temp)",
    "g_temp[5m] + 1",
    "g_temp + other_metric[5m]",
    "sum(g_temp[5m])",
    "sum by (room) (g_temp[5m])",
    "topk(g_temp[5m], g_temp)",
    "topk(g_temp)",
    "count_values(1, g_temp)",
    "g_temp offset",
    "g_temp @ ",
    "g_temp and 1",
    "g_temp + (g_temp and 1)",
    "{}",
    "{room=\"\"}",
    "g_temp{__name__=\"other_metric\"}",
    "1 == 1",
    "g_temp[5m][5m]",
    "'abc",
    "1e",
    "g_temp[0s]",
    "g_temp[1m:0s]",
    "g_temp{room}",
];

/// `q=...` urlencoded.
fn q(query: &str) -> String {
    format!("query={}", urlencode(query))
}

fn cases(t: i64) -> Vec<Case> {
    use Norm::*;
    let (start, end) = (t - 5, t);
    let mut c = Vec::new();

    // Instant queries, GET and POST.
    for (expr, norm) in [
        ("g_temp", SortResult),
        ("sum(g_temp)", Exact),
        ("sum by (room) (g_temp)", SortResult),
        ("g_temp > 1", SortResult),
        ("g_temp * 2", SortResult),
        ("rate(c_req_total[10s])", SortResult),
        ("sum by (code) (c_req_total)", SortResult),
        (
            "histogram_quantile(0.9, sum by (le) (h_lat_seconds_bucket))",
            Exact,
        ),
        ("s_q_seconds", SortResult),
        ("1+1", Exact),
        ("vector(1)", Exact),
        ("scalar(sum(g_temp))", Exact),
        ("time()", Exact),
        ("\"hello\"", Exact),
        ("big_value", Exact),
        ("nan_value", Exact),
        ("inf_value", Exact),
        ("-inf_value", Exact),
        ("g_temp{room=~\"a|b\"}", SortResult),
        ("topk(2, g_temp)", Exact),
        ("sort_desc(g_temp)", Exact),
        ("sort(c_req_total)", Exact),
        ("count(up)", Exact),
        ("up", SortResult),
        ("absent(nope)", Exact),
        (
            "label_replace(g_temp, \"x\", \"$1\", \"room\", \"(.*)\")",
            SortResult,
        ),
        ("max_over_time(g_temp[10s])", SortResult),
        ("avg by (job) (g_temp)", SortResult),
        ("count_values(\"v\", g_temp)", SortResult),
        ("g_temp and on(room) g_temp", SortResult),
        ("1e-7", Exact),
        ("0.1+0.2", Exact),
        ("-0", Exact),
        ("other_metric", SortResult),
        ("nope", Exact),
        ("untyped_x / 4", Exact),
    ] {
        c.push(get(format!("/api/v1/query?{}&time={t}", q(expr)), norm));
        c.push(post("/api/v1/query", format!("{}&time={t}", q(expr)), norm));
    }
    // Instant query errors.
    // Parse errors: Prometheus's position prefix and wording.
    for expr in PARSE_ERRORS {
        c.push(get(format!("/api/v1/query?{}", q(expr)), Exact));
    }
    c.push(post("/api/v1/query", q("sum(x[5m])"), Exact));
    const RANGE_PARSE: &str =
        "Prometheus 3 prefixes range-query parse errors with `invalid parameter \"query\": `";
    c.push(
        get(
            format!(
                "/api/v1/query_range?{}&start=10&end=20&step=1",
                q("rate(g_temp)")
            ),
            Exact,
        )
        .prom3(400, RANGE_PARSE),
    );
    c.push(
        post(
            "/api/v1/query_range",
            format!("{}&start=10&end=20&step=1", q("1 +")),
            Exact,
        )
        .prom3(400, RANGE_PARSE),
    );
    c.push(get(
        format!("/api/v1/query?{}", q("g_temp @ 1 offset 0s")),
        Exact,
    ));
    c.push(get("/api/v1/query?query=g_temp&time=x", Exact).prom3(
        400,
        "Prometheus 3 lower-cased \"Invalid time value\" to \"invalid time value\"",
    ));
    c.push(get("/api/v1/query?query=g_temp&timeout=x", Exact));
    c.push(get(
        format!(
            "/api/v1/query?{}&time={t}",
            q("g_temp + ignoring(room) g_temp")
        ),
        ErrorAnyOrder,
    ));
    c.push(
        get(
            format!("/api/v1/query?query=g_temp&time={t}&limit=-1"),
            Exact,
        )
        .prom3(
            400,
            "`limit` on queries is new in Prometheus 3; 2.42 ignores it",
        ),
    );
    c.push(
        get(
            format!("/api/v1/query?query=g_temp&time={t}&limit=1"),
            Exact,
        )
        .prom3(
            200,
            "`limit` on queries is new in Prometheus 3 (truncates, warns); 2.42 ignores it",
        ),
    );

    // Range queries.
    for expr in [
        "g_temp",
        "sum(g_temp)",
        "1+1",
        "rate(c_req_total[10s])",
        "sum by (job) (g_temp)",
        "time()",
        "nan_value",
    ] {
        let params = format!("{}&start={start}&end={end}&step=1", q(expr));
        c.push(get(format!("/api/v1/query_range?{params}"), Exact));
        c.push(post("/api/v1/query_range", params, Exact));
    }
    // Grafana: POST, a coarser step, a timeout (the window starts after both servers' first
    // scrape: before it they hold different data).
    c.push(post(
        "/api/v1/query_range",
        format!(
            "{}&start={}&end={t}&step=5&timeout=60s",
            q("sum by (job) (g_temp)"),
            t - 10
        ),
        Exact,
    ));
    for bad in [
        "query=g_temp&end=10&step=1".to_string(),
        "query=g_temp&start=10&end=5&step=1".into(),
        "query=g_temp&start=10&end=20&step=0".into(),
        "query=g_temp&start=10&end=20&step=x".into(),
        "query=g_temp&start=0&end=100000&step=0.001".into(),
        "query=g_temp&start=x&end=20&step=1".into(),
    ] {
        c.push(get(format!("/api/v1/query_range?{bad}"), Exact));
    }
    c.push(
        get(
            format!(
                "/api/v1/query_range?{}&start=10&end=20&step=1",
                q("g_temp[5s]")
            ),
            Exact,
        )
        .prom3(
            400,
            "Prometheus 3 prefixes range-query type errors with `invalid parameter \"query\": `",
        ),
    );
    c.push(
        get(
            format!("/api/v1/query_range?{}&start=10&end=20&step=1", q("\"s\"")),
            Exact,
        )
        .prom3(
            400,
            "Prometheus 3 prefixes range-query type errors with `invalid parameter \"query\": `",
        ),
    );

    // Series.
    for m in [
        "g_temp",
        "{job=\"alpha\"}",
        "{__name__!=\"\"}",
        "c_req_total{code=\"200\"}",
        "{__name__=~\"g_.*|other_metric\"}",
    ] {
        let params = format!("match[]={}&start={start}&end={end}", urlencode(m));
        c.push(get(format!("/api/v1/series?{params}"), SortData));
        c.push(post("/api/v1/series", params, SortData));
    }
    c.push(get(
        format!(
            "/api/v1/series?match[]={}&match[]={}",
            urlencode("g_temp"),
            urlencode("other_metric")
        ),
        SortData,
    ));
    c.push(get("/api/v1/series", Exact));
    c.push(get(
        format!("/api/v1/series?match[]={}", urlencode("{__name__=~\".*\"}")),
        Exact,
    ));
    for bad in [
        "foo(",
        "sum(g_temp)",
        "g_temp[5m]",
        "g_temp offset 5m",
        "1",
        "g_temp other_metric",
        "g_temp{",
        "g_temp{room}",
    ] {
        c.push(get(
            format!("/api/v1/series?match[]={}", urlencode(bad)),
            Exact,
        ));
    }
    c.push(get("/api/v1/series?match[]=up&start=x", Exact).prom3(
        400,
        "Prometheus 3 lower-cased \"Invalid time value\" to \"invalid time value\"",
    ));
    // Grafana's series discovery.
    c.push(get(
        format!(
            "/api/v1/series?match[]={}&start={start}&end={end}&limit=40000",
            urlencode("{__name__!=\"\"}")
        ),
        SortData,
    ));

    // Label names.
    c.push(get("/api/v1/labels", Exact));
    c.push(post("/api/v1/labels", "", Exact));
    c.push(get(
        format!("/api/v1/labels?start={start}&end={end}"),
        Exact,
    ));
    c.push(get(
        format!("/api/v1/labels?match[]={}", urlencode("g_temp")),
        Exact,
    ));
    c.push(post(
        "/api/v1/labels",
        format!(
            "match[]={}&match[]={}&start={start}&end={end}",
            urlencode("c_req_total"),
            urlencode("{job=\"beta\"}")
        ),
        Exact,
    ));
    c.push(get(
        format!("/api/v1/labels?start={start}&end={end}&limit=40000"),
        Exact,
    ));
    c.push(get(
        format!("/api/v1/labels?match[]={}", urlencode("foo(")),
        Exact,
    ));
    c.push(get(
        format!(
            "/api/v1/label/room/values?match[]={}",
            urlencode("g_temp[5m]")
        ),
        Exact,
    ));

    // Label values.
    for (name, extra) in [
        ("__name__", String::new()),
        ("__name__", format!("start={start}&end={end}&limit=40000")),
        ("job", String::new()),
        ("room", String::new()),
        (
            "room",
            format!("match[]={}", urlencode("g_temp{job=\"beta\"}")),
        ),
        ("code", format!("match[]={}", urlencode("c_req_total"))),
        ("nope", String::new()),
        ("le", String::new()),
        ("quantile", format!("match[]={}", urlencode("s_q_seconds"))),
    ] {
        c.push(get(format!("/api/v1/label/{name}/values?{extra}"), Exact));
    }
    // Ranges the head does not overlap: Prometheus reads label names and values only from
    // the blocks and head overlapping `[start, end]`, so these are empty.
    let (past, future) = ("start=1&end=100".to_string(), format!("start={}", t + 3600));
    for extra in [&past, &future] {
        c.push(get(format!("/api/v1/labels?{extra}"), Exact));
        c.push(get(format!("/api/v1/label/job/values?{extra}"), Exact));
        c.push(get(
            format!(
                "/api/v1/label/room/values?match[]={}&{extra}",
                urlencode("g_temp")
            ),
            Exact,
        ));
    }
    c.push(get("/api/v1/label/0abc/values", Exact).prom3(
        200,
        "Prometheus 3 accepts any UTF-8 label name; 2.42 refuses names that are not legacy-valid",
    ));
    c.push(get("/api/v1/label/U__room/values", Exact).prom3(
        200,
        "Prometheus 3 decodes `U__` label names (UTF-8 names); 2.42 rejects them as invalid",
    ));

    // Metadata.
    c.push(get("/api/v1/metadata", Exact));
    c.push(get("/api/v1/metadata?metric=g_temp", Exact));
    c.push(get("/api/v1/metadata?metric=nope", Exact));
    c.push(get("/api/v1/metadata?limit=2", MetadataCount));
    c.push(get("/api/v1/metadata?limit=0", Exact));
    c.push(get("/api/v1/metadata?limit_per_metric=1", Exact));
    c.push(get("/api/v1/metadata?limit=x", Exact));
    c.push(get("/api/v1/metadata?limit_per_metric=x", Exact).prom3(
        400,
        "`limit_per_metric` is newer than 2.42 (which ignores it); Prometheus 3 checks it",
    ));
    c.push(get("/api/v1/targets/metadata", SortData));
    c.push(get("/api/v1/targets/metadata?metric=g_temp", SortData));
    c.push(get(
        format!(
            "/api/v1/targets/metadata?match_target={}",
            urlencode("{job=\"beta\"}")
        ),
        SortData,
    ));
    c.push(get(
        format!(
            "/api/v1/targets/metadata?match_target={}&metric=other_metric",
            urlencode("{job=\"beta\"}")
        ),
        SortData,
    ));
    c.push(get("/api/v1/targets/metadata?limit=x", Exact));

    // Targets, pools, rules, alerts.
    for p in [
        "/api/v1/targets",
        "/api/v1/targets?state=active",
        "/api/v1/targets?state=dropped",
        "/api/v1/targets?state=any",
        "/api/v1/targets?state=bogus",
        "/api/v1/targets?scrapePool=alpha",
    ] {
        c.push(get(p, Targets));
    }
    for p in [
        "/api/v1/scrape_pools",
        "/api/v1/rules",
        "/api/v1/rules?type=alert",
        "/api/v1/rules?type=RECORD",
        "/api/v1/rules?type=x",
        "/api/v1/alerts",
        "/api/v1/alertmanagers",
        "/api/v1/status/walreplay",
    ] {
        c.push(get(p, Exact));
    }
    // Status pages.
    for p in [
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/config",
    ] {
        c.push(get(p, Keys));
    }
    c.push(get("/api/v1/status/flags", Flags));
    c.push(get("/api/v1/status/tsdb", Tsdb));
    c.push(get("/api/v1/status/tsdb?limit=0", Tsdb).prom3(
        400,
        "`limit` on status/tsdb is new in Prometheus 3 (1..10000); 2.42 ignores it",
    ));

    // format_query.
    for expr in [
        "foo/bar",
        "sum(rate(x[5m]))by(job)",
        "a+on(b)group_left(c)d",
        "-x^2",
        "rate(x[5m:1m])",
        "abs(x) and ignoring(a) y",
        "1e3",
        "\"str\"",
        "x @ 100",
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{job=\"api\",code=~\"2..\"}[5m]))) > bool 0.5 unless on(instance) up == 0",
        "sum without(a,b)(x offset 5m)",
        "x[5m] @ start()",
    ] {
        c.push(get(format!("/api/v1/format_query?{}", q(expr)), Exact));
        c.push(post("/api/v1/format_query", q(expr), Exact));
    }
    c.push(get(format!("/api/v1/format_query?{}", q("foo(")), Exact));
    c.push(post("/api/v1/format_query", q("sum(g_temp[5m])"), Exact));

    // parse_query: new in Prometheus 3 (the AST's JSON is checked by unit goldens).
    c.push(
        get(
            format!("/api/v1/parse_query?{}", q("sum(rate(x[5m]))")),
            Exact,
        )
        .prom3(200, "parse_query is new in Prometheus 3 (2.42 answers 404)"),
    );
    c.push(
        post("/api/v1/parse_query", q("a / on(b) c"), Exact)
            .prom3(200, "parse_query is new in Prometheus 3 (2.42 answers 404)"),
    );
    c.push(
        get(format!("/api/v1/parse_query?{}", q("foo(")), Exact)
            .prom3(400, "parse_query is new in Prometheus 3 (2.42 answers 404)"),
    );

    // query_exemplars.
    c.push(get(
        format!("/api/v1/query_exemplars?{}", q("g_temp")),
        Exact,
    ));
    c.push(post(
        "/api/v1/query_exemplars",
        q("sum(rate(c_req_total[5m]))"),
        Exact,
    ));
    c.push(get(
        format!("/api/v1/query_exemplars?{}", q("1 + 2")),
        Exact,
    ));
    c.push(get(
        "/api/v1/query_exemplars?query=up&start=10&end=5",
        Exact,
    ));
    c.push(
        get("/api/v1/query_exemplars?query=up&start=x", Exact).prom3(
            400,
            "Prometheus 3 lower-cased \"Invalid time value\" to \"invalid time value\"",
        ),
    );
    c.push(get(format!("/api/v1/query_exemplars?{}", q("up(")), Exact));
    // Grafana's exemplar probe: milliseconds where seconds are expected.
    let now_ms = t * 1000;
    c.push(get(
        format!(
            "/api/v1/query_exemplars?query=test&start={}&end={now_ms}",
            now_ms - 1_800_000
        ),
        Exact,
    ));
    c.push(post(
        "/api/v1/query_exemplars",
        format!("{}&start={start}&end={end}", q("g_temp")),
        Exact,
    ));

    // Grafana: health check, buildinfo, and its resource calls.
    c.push(post("/api/v1/query", "query=1%2B1&time=4", Exact));
    c.push(get("/api/v1/query?query=1%2B1&time=4", Exact));
    c.push(post(
        "/api/v1/query",
        format!("{}&time={t}&timeout=60s", q("sum(g_temp)")),
        Exact,
    ));
    c.push(get(
        format!("/api/v1/query?{}&time={t}", q("up{job=\"beta\"}")),
        Exact,
    ));

    // Grafana's resource calls made with POST keep the parameters in the URL with an empty
    // body, or split them between both (the body's single values win).
    c.push(post(
        format!(
            "/api/v1/labels?match[]={}&start={start}&end={end}",
            urlencode("g_temp")
        ),
        "",
        Exact,
    ));
    c.push(post(
        format!("/api/v1/series?match[]={}", urlencode("other_metric")),
        "",
        SortData,
    ));
    c.push(post(
        format!("/api/v1/query?{}&time={t}", q("sum(g_temp)")),
        "",
        Exact,
    ));
    c.push(post(
        format!("/api/v1/query?{}&time=1", q("count(g_temp)")),
        format!("time={t}"),
        Exact,
    ));
    c.push(post(
        format!("/api/v1/series?match[]={}", urlencode("g_temp")),
        format!("match[]={}", urlencode("other_metric")),
        SortData,
    ));
    // `label_values(g_temp{job="alpha"}, room)` and `query_result(...)` variables.
    c.push(get(
        format!(
            "/api/v1/label/room/values?match[]={}&start={start}&end={end}",
            urlencode("g_temp{job=\"alpha\"}")
        ),
        Exact,
    ));
    c.push(get(
        format!(
            "/api/v1/query?{}&time={t}",
            q("topk(1, sum by (job) (g_temp))")
        ),
        Exact,
    ));
    // Ad-hoc filters injected into a selector, and a regex Grafana escaped.
    c.push(get(
        format!(
            "/api/v1/query?{}&time={t}",
            q("sum(c_req_total{code=~\"(200|500)\",method!=\"post\"})")
        ),
        Exact,
    ));
    c.push(get(
        format!(
            "/api/v1/query?{}&time={t}",
            q("other_metric{path=~\"\\\\/x|\\\\/y\"}")
        ),
        SortResult,
    ));

    // Federation, and compressed answers (compared decompressed).
    for m in [
        vec!["g_temp"],
        vec!["{__name__=~\"g_.*|other_metric\"}"],
        vec!["c_req_total{code=\"200\"}", "s_q_seconds"],
        vec!["h_lat_seconds_bucket"],
        vec!["nope"],
    ] {
        let params: Vec<String> = m
            .iter()
            .map(|s| format!("match[]={}", urlencode(s)))
            .collect();
        c.push(get(format!("/federate?{}", params.join("&")), FederateText));
    }
    c.push(get("/federate", FederateText));
    c.push(get("/federate?match[]=foo(", Exact));
    c.push(get(
        format!("/federate?match[]={}", urlencode("g_temp offset 5m")),
        Exact,
    ));
    c.push(
        get(
            format!("/federate?match[]={}", urlencode("other_metric")),
            FederateText,
        )
        .encoding("gzip"),
    );
    c.push(
        get(
            format!("/federate?match[]={}", urlencode("g_temp")),
            FederateText,
        )
        .encoding("deflate, gzip"),
    );
    c.push(
        get(
            format!("/api/v1/query?{}&time={t}", q("sum(g_temp)")),
            Exact,
        )
        .encoding("gzip"),
    );
    c.push(get("/api/v1/labels", Exact).encoding("br, gzip"));
    c.push(get("/api/v1/label/job/values", Exact).encoding("deflate"));
    c.push(get("/api/v1/status/buildinfo", Keys).encoding("identity"));
    for (encoding, norm) in [("gzip", Exact), ("deflate", Exact)] {
        c.push(
            post(
                "/api/v1/query_range",
                format!(
                    "{}&start={start}&end={end}&step=1",
                    q("{__name__=~\"g_temp|c_req_total|other_metric\"}")
                ),
                norm,
            )
            .encoding(encoding),
        );
    }
    c.push(get("/api/v1/metadata", Exact).encoding("gzip"));

    // Methods and paths.
    for (m, p) in [
        ("PUT", "/api/v1/query"),
        ("DELETE", "/api/v1/labels"),
        ("POST", "/api/v1/metadata"),
        ("POST", "/api/v1/label/job/values"),
        ("POST", "/api/v1/targets"),
        ("POST", "/api/v1/status/buildinfo"),
        ("PATCH", "/api/v1/rules"),
        ("OPTIONS", "/api/v1/query"),
        ("OPTIONS", "/api/v1/nope"),
        ("GET", "/api/v1/nope"),
        ("POST", "/api/v1/nope"),
    ] {
        c.push(method(m, p));
    }
    // CORS: the default `.*` answers any origin with `*`.
    for case in [
        get(format!("/api/v1/query?query=1&time={t}"), Exact),
        get("/api/v1/labels", Exact),
        get("/api/v1/status/buildinfo", Keys),
        method("OPTIONS", "/api/v1/query_range"),
        method("OPTIONS", "/api/v1/label/job/values"),
        get("/api/v1/query?query=foo(", Exact),
    ] {
        c.push(case.origin("http://grafana.example"));
    }
    c
}

/// One answer, reduced to what is compared.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    /// `Allow`, `Vary` and the `Access-Control-*` headers, sorted.
    headers: Vec<(String, String)>,
    json: Option<Value>,
    text: String,
}

fn send(port: u16, case: &Case) -> Answer {
    let mut origin: Vec<(&str, &str)> = case.origin.iter().map(|o| ("Origin", *o)).collect();
    if let Some(e) = case.accept_encoding {
        origin.push(("Accept-Encoding", e));
    }
    let r = match (&case.body, case.method) {
        (None, m) => http::request(port, m, &case.path, &origin, b""),
        (Some(body), m) => http::request(
            port,
            m,
            &case.path,
            &[
                origin.as_slice(),
                &[("Content-Type", "application/x-www-form-urlencoded")],
            ]
            .concat(),
            body.as_bytes(),
        ),
    }
    .unwrap_or_else(|e| panic!("{} {}: {e}", case.method, case.path));
    let body = decode(r.header("content-encoding"), &r.body);
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if case.norm == Norm::FederateText {
        text = without_timestamps(&text);
    }
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| {
            n == "allow"
                || n == "vary"
                || n == "content-encoding"
                || n.starts_with("access-control-")
        })
        .cloned()
        .collect();
    headers.sort();
    Answer {
        status: r.status,
        content_type: r.header("content-type").map(str::to_string),
        headers,
        json: serde_json::from_str(&text).ok(),
        text,
    }
}

/// The body decompressed as its `Content-Encoding` says (gzip or zlib-wrapped deflate).
fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding {
        Some("gzip") => {
            // A gzip member without optional fields: 10 header bytes, deflate data, 8 trailer
            // bytes; both servers write no file name or comment.
            assert!(body.len() >= 18 && body[3] == 0, "unexpected gzip header");
            miniz_oxide::inflate::decompress_to_vec(&body[10..body.len() - 8])
                .unwrap_or_else(|e| panic!("bad gzip body: {e:?}"))
        }
        Some("deflate") => miniz_oxide::inflate::decompress_to_vec_zlib(body)
            .unwrap_or_else(|e| panic!("bad deflate body: {e:?}")),
        _ => body.to_vec(),
    }
}

/// Federation text with each sample line's timestamp (its last field) removed.
fn without_timestamps(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('#') {
                l.to_string()
            } else {
                l.rsplit_once(' ').map_or(l, |(rest, _)| rest).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sort_array(v: &mut Value) {
    if let Some(a) = v.as_array_mut() {
        a.sort_by_key(|x| x.to_string());
    }
}

/// Applies the case's normalisation to one answer.
fn normalise(norm: Norm, v: &mut Value, prometheus: bool) {
    let data = &mut v["data"];
    match norm {
        Norm::Exact | Norm::FederateText => {}
        Norm::SortData => sort_array(data),
        Norm::SortResult => sort_array(&mut data["result"]),
        Norm::MetadataCount => {
            let n = data.as_object().map_or(0, |o| o.len());
            *data = Value::from(n);
        }
        Norm::Targets => {
            if !prometheus {
                // Prometheus 3 added `droppedTargetCounts` (2.42 has no such field).
                if let Some(o) = data.as_object_mut() {
                    o.remove("droppedTargetCounts");
                }
            }
            for list in ["activeTargets", "droppedTargets"] {
                if let Some(ts) = data[list].as_array_mut() {
                    for t in ts.iter_mut() {
                        if let Some(o) = t.as_object_mut() {
                            // Times and durations of scrapes; `globalUrl` is built from the
                            // host name by Prometheus.
                            for k in ["lastScrape", "lastScrapeDuration", "globalUrl"] {
                                o.remove(k);
                            }
                        }
                    }
                    ts.sort_by_key(|x| x.to_string());
                }
            }
        }
        Norm::ErrorAnyOrder => {
            if let Some(e) = v["error"].as_str() {
                let mut chars: Vec<char> = e.chars().collect();
                chars.sort_unstable();
                v["error"] = Value::from(chars.into_iter().collect::<String>());
            }
        }
        Norm::Flags => {
            const SHARED: &[&str] = &[
                "log.level",
                "query.lookback-delta",
                "query.max-concurrency",
                "query.max-samples",
                "query.timeout",
                "storage.tsdb.max-block-duration",
                "storage.tsdb.min-block-duration",
                "web.cors.origin",
                "web.enable-admin-api",
                "web.enable-lifecycle",
                "web.external-url",
                "web.max-connections",
                "web.read-timeout",
            ];
            if let Some(o) = data.as_object_mut() {
                o.retain(|k, _| SHARED.contains(&k.as_str()));
            }
        }
        Norm::Tsdb => {
            if let Some(h) = data["headStats"].as_object_mut() {
                for k in ["chunkCount", "minTime", "maxTime"] {
                    h.remove(k);
                }
            }
            for list in [
                "seriesCountByMetricName",
                "labelValueCountByLabelName",
                "memoryInBytesByLabelName",
                "seriesCountByLabelValuePair",
            ] {
                // Ties are broken by Go's heap order: compare the counts, and the names of
                // entries whose count is not tied with the last one kept.
                if let Some(a) = data[list].as_array_mut() {
                    let last = a.last().map(|e| e["value"].clone());
                    for e in a.iter_mut() {
                        if Some(&e["value"]) == last.as_ref() {
                            e["name"] = Value::from("<tied>");
                        }
                    }
                    a.sort_by_key(|x| x.to_string());
                }
            }
        }
        Norm::Keys => {
            if let Some(o) = data.as_object_mut() {
                for (_, val) in o.iter_mut() {
                    *val = Value::from(type_name(val));
                }
                if !prometheus {
                    // Fields Prometheus 3 added to runtimeinfo.
                    for k in ["hostname", "serverTime", "GOMEMLIMIT"] {
                        o.remove(k);
                    }
                }
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Field-by-field differences, as `path: expected != actual`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("{path}.{k}: missing in promcore")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only in promcore"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

/// `Vary` as Prometheus 2.42 sends it. Prometheus 3 deliberately added two tokens: its
/// compression handler always varies on `Accept-Encoding`, and `SetCORS` sends `Vary: Origin`
/// even to requests without an `Origin` (2.42 only when one was sent).
fn vary_as_2_42(headers: &[(String, String)], sent_origin: bool) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| {
            if n != "vary" {
                return Some((n.clone(), v.clone()));
            }
            let tokens: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("Accept-Encoding"))
                .filter(|t| sent_origin || !t.eq_ignore_ascii_case("Origin"))
                .collect();
            (!tokens.is_empty()).then(|| (n.clone(), tokens.join(", ")))
        })
        .collect()
}

/// The differences between Prometheus's and promcore's answers to `case`.
fn compare(case: &Case, prom: &Answer, ours: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    if prom.status != ours.status {
        out.push(format!("status {} != {}", prom.status, ours.status));
    }
    let media = |a: &Answer| a.content_type.clone().filter(|_| a.status != 204);
    // promcore sends bodies up to 1 KiB uncompressed (compressing them costs more than it
    // saves; clients take either): `Content-Encoding` is compared for larger bodies only.
    let large = ours.text.len() > 1024;
    let coding = |h: &[(String, String)]| -> Vec<(String, String)> {
        h.iter()
            .filter(|(n, _)| large || n != "content-encoding")
            .cloned()
            .collect()
    };
    let (ph, oh) = (
        vary_as_2_42(&coding(&prom.headers), case.origin.is_some()),
        vary_as_2_42(&coding(&ours.headers), case.origin.is_some()),
    );
    if ph != oh {
        out.push(format!("headers {ph:?} != {oh:?}"));
    }
    if media(prom) != media(ours) {
        out.push(format!(
            "content type {:?} != {:?}",
            prom.content_type, ours.content_type
        ));
    }
    match (&prom.json, &ours.json) {
        (Some(p), Some(o)) => {
            let (mut p, mut o) = (p.clone(), o.clone());
            if case.gap.is_some() {
                // Compare only the envelope and error type.
                for v in [&mut p, &mut o] {
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("error");
                    }
                }
            }
            normalise(case.norm, &mut p, true);
            normalise(case.norm, &mut o, false);
            diff("", &p, &o, &mut out);
        }
        (None, None) => {
            // A known gap in a plain-text error: the status and content type are compared.
            if prom.text != ours.text && case.gap.is_none() {
                out.push(format!("body {:?} != {:?}", prom.text, ours.text));
            }
        }
        _ => out.push(format!("body {:?} != {:?}", prom.text, ours.text)),
    }
    out
}

fn config(alpha: &TestTarget, beta: &TestTarget) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: alpha\n    static_configs:\n      - targets: ['{}']\n  - job_name: beta\n    static_configs:\n      - targets: ['{}']\n",
        alpha.address(),
        beta.address()
    )
}

fn start(binary: &Binary, dir: &Path, config: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let mut s = Server::spawn(binary, &path, &dir.join("data"), free_port(), &[]);
    s.wait_ready();
    s
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether `server` holds the data of both targets and their metadata.
fn has_data(server: &Server) -> bool {
    let r = http::get(
        server.port,
        "/api/v1/query?query=count(g_temp)%2Bcount(other_metric)",
    );
    let full = r
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .is_some_and(|v| v["data"]["result"][0]["value"][1] == "6");
    let md = http::get(server.port, "/api/v1/metadata")
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .is_some_and(|v| v["data"].as_object().is_some_and(|o| o.len() == 5));
    full && md
}

#[test]
fn http_api_answers_as_prometheus_2_42() {
    let reference = Binary::prometheus();
    if std::process::Command::new(&reference.path)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no `prometheus` binary (Debian's 2.42) on PATH");
        return;
    }
    let alpha = TestTarget::serve(|_| Reply::Metrics(ALPHA.to_string()));
    let beta = TestTarget::serve(|_| Reply::Metrics(BETA.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let config = config(&alpha, &beta);
    let prom = start(&reference, &dir.path().join("prometheus"), &config);
    let ours = start(
        &Binary::under_test(),
        &dir.path().join("under_test"),
        &config,
    );

    let both = wait_until(PATIENCE, || {
        (has_data(&prom) && has_data(&ours)).then_some(())
    });
    assert!(
        both.is_some(),
        "the servers never had the same data\n{}\n{}",
        prom.log_tail(),
        ours.log_tail()
    );
    // Range queries look 5s back and rates 10s: wait until both have 12s of samples.
    let first = now_s();
    std::thread::sleep(Duration::from_secs(12));
    let t = first + 11;

    // Run against Prometheus itself (`E2E_SERVER_BIN`), every answer must equal 2.42's.
    let promcore = Binary::under_test().promcore;
    let cases = cases(t);
    let mut failures = Vec::new();
    let mut prom3_notes = Vec::new();
    let mut gaps = Vec::new();
    for case in &cases {
        let a = send(prom.port, case);
        let b = send(ours.port, case);
        let label = format!(
            "{} {}{}",
            case.method,
            case.path,
            case.body
                .as_deref()
                .filter(|b| !b.is_empty())
                .map(|b| format!(" [{b}]"))
                .unwrap_or_default()
        );
        if let Some(p3) = case.prom3.filter(|_| promcore) {
            prom3_notes.push(format!("{label}: {}", p3.reason));
            let expected_status = if p3.status == 200 { "success" } else { "error" };
            let envelope = b.json.as_ref().and_then(|v| v["status"].as_str());
            if b.status != p3.status
                || b.content_type.as_deref() != Some("application/json")
                || envelope != Some(expected_status)
            {
                failures.push(format!(
                    "{label}: expected Prometheus 3's {} JSON answer ({}), got {}: {}",
                    p3.status, p3.reason, b.status, b.text
                ));
            }
            continue;
        }
        if let Some(gap) = case.gap {
            gaps.push(format!("{label}: {}", gap.reason));
        }
        let d = compare(case, &a, &b);
        if !d.is_empty() {
            failures.push(format!(
                "{label}\n    {}\n    prometheus: {}\n    promcore:   {}",
                d.join("\n    "),
                a.text.chars().take(600).collect::<String>(),
                b.text.chars().take(600).collect::<String>()
            ));
        }
    }
    eprintln!("{} requests compared", cases.len());
    eprintln!(
        "Prometheus 3 differences ({}):\n  {}",
        prom3_notes.len(),
        prom3_notes.join("\n  ")
    );
    eprintln!("known gaps ({}):\n  {}", gaps.len(), gaps.join("\n  "));
    assert!(
        failures.is_empty(),
        "{} of {} requests differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    drop((prom, ours, alpha, beta));
}
