//! `/metrics`: promcore's own state in the text format, under Prometheus's names where the
//! meaning is the same (so Prometheus's dashboards work) and `promcore_*` names for what only
//! a sharded server has (per-shard series, queues, back-pressure).
//!
//! It gathers: the shards' counters (one `Stats` request per shard), the router's links, the
//! scrape engine, the reloads and the process. It never keeps state of its own.

use std::time::Instant;

use shards::compaction_timings::{DurationHistogram, DurationSum};

use crate::metrics::{Kind, MetricsWriter, ProcessStats};
use crate::router::label_cache::LabelAnswerStats;
use crate::router::protocol::ShardStats;
use crate::server::App;

pub async fn render(app: &App) -> String {
    let mut w = MetricsWriter::with_capacity(16 * 1024);
    ProcessStats::read().write(&mut w);
    w.family(
        "promcore_build_info",
        "A metric with a constant '1' value labeled by version.",
        Kind::Gauge,
    );
    w.sample(
        "promcore_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    write_reload_metrics(app, &mut w);
    app.http_metrics.write(&mut w);
    app.fronts.write(&mut w);
    app.query_timings.write(&mut w, Instant::now());
    if let Some(router) = app.router.get() {
        if let Ok(stats) = router.stats().await {
            write_tsdb_metrics(&stats, &mut w);
        }
        w.family(
            "promcore_shard_requests_total",
            "Requests the router sent to the shard.",
            Kind::Counter,
        );
        let shards: Vec<String> = (0..router.shards()).map(|i| i.to_string()).collect();
        for (link, shard) in router.links().iter().zip(&shards) {
            let v = link.stats.requests.get() as f64;
            w.sample("promcore_shard_requests_total", &[("shard", shard)], v);
        }
        w.family(
            "promcore_shard_queue_full_waits_total",
            "Sends to the shard that found its queue full and waited (back-pressure).",
            Kind::Counter,
        );
        for (link, shard) in router.links().iter().zip(&shards) {
            let v = link.stats.send_waits.get() as f64;
            w.sample(
                "promcore_shard_queue_full_waits_total",
                &[("shard", shard)],
                v,
            );
        }
        w.family(
            "promcore_shard_queue_full_wait_seconds_total",
            "Time senders spent waiting for room in the shard's queue.",
            Kind::Counter,
        );
        for (link, shard) in router.links().iter().zip(&shards) {
            let v = link.stats.send_wait_nanos.get() as f64 / 1e9;
            w.sample(
                "promcore_shard_queue_full_wait_seconds_total",
                &[("shard", shard)],
                v,
            );
        }
    }
    if let Some(router) = app.router.get() {
        write_label_answer_metrics(
            router.label_answer_stats(),
            router.label_list_stats(),
            &mut w,
        );
    }
    write_scrape_metrics(app, &mut w);
    write_notifier_metrics(app, &mut w);
    w.finish()
}

/// The router's kept label answers (`router::label_cache`) and the shard lists it merges
/// answers from (`router::label_partials`).
fn write_label_answer_metrics(
    answers: LabelAnswerStats,
    lists: LabelAnswerStats,
    w: &mut MetricsWriter,
) {
    let counters = [
        (
            "promcore_label_answers_kept_hits_total",
            "Label name and value requests answered from the router's kept answers.",
            answers.hits,
        ),
        (
            "promcore_label_answers_kept_misses_total",
            "Label name and value requests merged from shard lists (kept or asked for).",
            answers.misses,
        ),
        (
            "promcore_label_lists_kept_hits_total",
            "Shard lists of label requests taken from those the router keeps.",
            lists.hits,
        ),
        (
            "promcore_label_lists_kept_misses_total",
            "Shard lists of label requests the shards were asked for.",
            lists.misses,
        ),
    ];
    for (name, help, v) in counters {
        w.family(name, help, Kind::Counter);
        w.sample(name, &[], v as f64);
    }
    let gauges = [
        (
            "promcore_label_answers_kept_bytes",
            "Bytes of the label answers the router keeps.",
            answers.bytes,
        ),
        (
            "promcore_label_lists_kept_bytes",
            "Bytes of the shard lists of label requests the router keeps.",
            lists.bytes,
        ),
    ];
    for (name, help, v) in gauges {
        w.family(name, help, Kind::Gauge);
        w.sample(name, &[], v as f64);
    }
}

/// Compaction and head GC durations, summed across shards, typed as Prometheus 2.42 has
/// them (a histogram and a summary without quantiles).
fn write_compaction_timings(stats: &[ShardStats], w: &mut MetricsWriter) {
    let mut durations = DurationHistogram::default();
    let mut gc = DurationSum::default();
    for s in stats {
        durations.merge(&s.compaction.durations);
        durations.merge(&s.block_compaction.durations);
        gc.merge(&s.compaction.head_gc);
    }
    let name = "prometheus_tsdb_compaction_duration_seconds";
    w.family(name, "Duration of compaction runs", Kind::Histogram);
    let bucket = format!("{name}_bucket");
    for (le, n) in durations.cumulative() {
        w.sample(&bucket, &[("le", &le.to_string())], n as f64);
    }
    w.sample(&bucket, &[("le", "+Inf")], durations.count as f64);
    w.sample(&format!("{name}_sum"), &[], durations.sum_seconds);
    w.sample(&format!("{name}_count"), &[], durations.count as f64);
    let name = "prometheus_tsdb_head_gc_duration_seconds";
    w.family(
        name,
        "Runtime of garbage collection in the head block.",
        Kind::Summary,
    );
    w.sample(&format!("{name}_sum"), &[], gc.sum_seconds);
    w.sample(&format!("{name}_count"), &[], gc.count as f64);
}

fn write_reload_metrics(app: &App, w: &mut MetricsWriter) {
    let m = &app.reload_metrics;
    w.family(
        "prometheus_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
        Kind::Gauge,
    );
    let ok = if m.last_successful.get() { 1.0 } else { 0.0 };
    w.sample("prometheus_config_last_reload_successful", &[], ok);
    w.family(
        "prometheus_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration reload.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_config_last_reload_success_timestamp_seconds",
        &[],
        m.last_success_time.get(),
    );
    w.family(
        "prometheus_ready",
        "Whether Prometheus startup was fully completed and the server is ready for normal operation.",
        Kind::Gauge,
    );
    let ready = if app.is_ready() { 1.0 } else { 0.0 };
    w.sample("prometheus_ready", &[], ready);
}

/// A per-shard family: name, help, type and how to read the value.
type ShardFamily = (&'static str, &'static str, Kind, fn(&ShardStats) -> f64);

fn write_tsdb_metrics(stats: &[ShardStats], w: &mut MetricsWriter) {
    let sum = |f: &dyn Fn(&ShardStats) -> u64| stats.iter().map(f).sum::<u64>() as f64;
    let float = [("type", "float")];
    w.family(
        "prometheus_tsdb_head_series",
        "Total number of series in the head block.",
        Kind::Gauge,
    );
    w.sample("prometheus_tsdb_head_series", &[], sum(&|s| s.series));
    w.family(
        "prometheus_tsdb_head_samples_appended_total",
        "Total number of appended samples.",
        Kind::Counter,
    );
    w.sample(
        "prometheus_tsdb_head_samples_appended_total",
        &float,
        sum(&|s| s.head.samples_appended),
    );
    w.family(
        "prometheus_tsdb_head_series_created_total",
        "Total number of series created in the head",
        Kind::Counter,
    );
    w.sample(
        "prometheus_tsdb_head_series_created_total",
        &[],
        sum(&|s| s.head.series_created),
    );
    w.family(
        "prometheus_tsdb_head_chunks_created_total",
        "Total number of chunks created in the head",
        Kind::Counter,
    );
    w.sample(
        "prometheus_tsdb_head_chunks_created_total",
        &[],
        sum(&|s| s.head.chunks_created),
    );
    w.family(
        "prometheus_tsdb_out_of_order_samples_total",
        "Total number of out of order samples ingestion failed attempts due to out of order being disabled.",
        Kind::Counter,
    );
    w.sample(
        "prometheus_tsdb_out_of_order_samples_total",
        &float,
        sum(&|s| s.head.out_of_order_samples),
    );
    w.family(
        "prometheus_tsdb_out_of_bound_samples_total",
        "Total number of out of bound samples ingestion failed attempts with out of order support disabled.",
        Kind::Counter,
    );
    w.sample(
        "prometheus_tsdb_out_of_bound_samples_total",
        &float,
        sum(&|s| s.head.out_of_bound_samples),
    );
    let min = stats.iter().filter_map(|s| s.time_range).map(|r| r.0).min();
    let max = stats.iter().filter_map(|s| s.time_range).map(|r| r.1).max();
    w.family(
        "prometheus_tsdb_head_min_time",
        "Minimum time bound of the head block.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_tsdb_head_min_time",
        &[],
        min.unwrap_or(i64::MAX) as f64,
    );
    w.family(
        "prometheus_tsdb_head_max_time",
        "Maximum timestamp of the head block.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_tsdb_head_max_time",
        &[],
        max.unwrap_or(i64::MIN) as f64,
    );
    w.family(
        "prometheus_tsdb_wal_segment_current",
        "Write log segment index that TSDB is currently writing to (highest over the shards).",
        Kind::Gauge,
    );
    let seg = stats.iter().map(|s| s.wal_segment).max().unwrap_or(0);
    w.sample("prometheus_tsdb_wal_segment_current", &[], seg as f64);
    // Summed over the shards (one TSDB to its users).
    let blocks: [ShardFamily; 8] = [
        (
            "prometheus_tsdb_blocks_loaded",
            "Number of currently loaded data blocks",
            Kind::Gauge,
            |s| s.blocks as f64,
        ),
        (
            "prometheus_tsdb_storage_blocks_bytes",
            "The number of bytes that are currently used for local storage by all blocks.",
            Kind::Gauge,
            |s| s.block_bytes as f64,
        ),
        (
            "prometheus_tsdb_compactions_total",
            "Total number of compactions that were executed for the partition.",
            Kind::Counter,
            |s| (s.compaction.blocks_written + s.block_compaction.compactions) as f64,
        ),
        (
            "prometheus_tsdb_compactions_failed_total",
            "Total number of compactions that failed for the partition.",
            Kind::Counter,
            |s| (s.compaction.failures + s.block_compaction.failures) as f64,
        ),
        (
            "prometheus_tsdb_head_truncations_total",
            "Total number of head truncations attempted.",
            Kind::Counter,
            |s| s.compaction.head_truncations as f64,
        ),
        (
            "prometheus_tsdb_checkpoint_creations_total",
            "Total number of checkpoint creations attempted.",
            Kind::Counter,
            |s| s.compaction.checkpoints as f64,
        ),
        (
            "prometheus_tsdb_time_retentions_total",
            "The number of times that blocks were deleted because the maximum time limit was exceeded.",
            Kind::Counter,
            |s| s.retention.time_retentions as f64,
        ),
        (
            "prometheus_tsdb_size_retentions_total",
            "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
            Kind::Counter,
            |s| s.retention.size_retentions as f64,
        ),
    ];
    for (name, help, kind, value) in blocks {
        w.family(name, help, kind);
        w.sample(name, &[], stats.iter().map(value).sum::<f64>());
    }
    write_compaction_timings(stats, w);

    let shards: Vec<String> = (0..stats.len()).map(|i| i.to_string()).collect();
    let per_shard: [ShardFamily; 9] = [
        (
            "promcore_shard_head_series",
            "Series in the shard's head.",
            Kind::Gauge,
            |s| s.series as f64,
        ),
        (
            "promcore_shard_samples_appended_total",
            "Samples appended to the shard's head.",
            Kind::Counter,
            |s| s.head.samples_appended as f64,
        ),
        (
            "promcore_shard_head_heap_bytes",
            "Heap memory of the shard's head: series, chunks, postings, symbols.",
            Kind::Gauge,
            |s| s.heap_bytes as f64,
        ),
        (
            "promcore_shard_chunk_heap_renewals_total",
            "Times the shard copied its open chunks into a fresh heap to give back sparse pages.",
            Kind::Counter,
            |s| s.head.chunk_heap_renewals as f64,
        ),
        (
            "promcore_shard_wal_writes_total",
            "WAL writes of the shard (each carries one or more batches: group commit).",
            Kind::Counter,
            |s| s.wal_writes as f64,
        ),
        (
            "promcore_shard_batches_appended_total",
            "Append batches the shard took (one per target scrape and shard).",
            Kind::Counter,
            |s| s.batches_appended as f64,
        ),
        (
            "promcore_shard_append_errors_total",
            "Append batches refused because of a storage error.",
            Kind::Counter,
            |s| s.append_errors as f64,
        ),
        (
            "promcore_shard_wal_failed",
            "1 while the shard's WAL refuses writes after an I/O error.",
            Kind::Gauge,
            |s| if s.wal_failed { 1.0 } else { 0.0 },
        ),
        (
            "promcore_shard_retention_failures_total",
            "Retention runs of the shard that could not remove a block (retried).",
            Kind::Counter,
            |s| s.retention.failures as f64,
        ),
    ];
    for (name, help, kind, value) in per_shard {
        w.family(name, help, kind);
        for (s, shard) in stats.iter().zip(&shards) {
            w.sample(name, &[("shard", shard)], value(s));
        }
    }
}

fn write_scrape_metrics(app: &App, w: &mut MetricsWriter) {
    let m = &app.scrape_metrics;
    m.intervals.write(w, Instant::now());
    let counters = [
        (
            "prometheus_target_scrapes_exceeded_sample_limit_total",
            "Total number of scrapes that hit the sample limit and were rejected.",
            m.exceeded_sample_limit.get(),
        ),
        (
            "prometheus_target_scrapes_exceeded_body_size_limit_total",
            "Total number of scrapes that hit the body size limit",
            m.exceeded_body_size_limit.get(),
        ),
        (
            "prometheus_target_scrapes_sample_out_of_order_total",
            "Total number of samples rejected due to not being out of the expected order.",
            m.samples_out_of_order.get(),
        ),
        (
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            "Total number of samples rejected due to timestamp falling outside of the time bounds.",
            m.samples_out_of_bounds.get(),
        ),
        (
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "Total number of samples rejected due to duplicate timestamps but different values.",
            m.samples_duplicate_timestamp.get(),
        ),
        (
            "promcore_target_scrapes_total",
            "Scrapes attempted, successful or not.",
            m.scrapes.get(),
        ),
    ];
    for (name, help, v) in counters {
        w.family(name, help, Kind::Counter);
        w.sample(name, &[], v as f64);
    }
    if let Some(scrape) = app.scrape.get() {
        w.family(
            "prometheus_sd_discovered_targets",
            "Current number of discovered targets.",
            Kind::Gauge,
        );
        for (job, n) in scrape.target_counts() {
            w.sample(
                "prometheus_sd_discovered_targets",
                &[("config", &job), ("name", "scrape")],
                n as f64,
            );
        }
    }
}

fn write_notifier_metrics(app: &App, w: &mut MetricsWriter) {
    let n = &app.notifier;
    let m = &n.metrics;
    w.family(
        "prometheus_notifications_dropped_total",
        "Total number of alerts dropped due to errors when sending to Alertmanager.",
        Kind::Counter,
    );
    w.sample(
        "prometheus_notifications_dropped_total",
        &[],
        m.dropped.get() as f64,
    );
    w.family(
        "prometheus_notifications_queue_length",
        "The number of alert notifications in the queue.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_notifications_queue_length",
        &[],
        n.queue_length() as f64,
    );
    w.family(
        "prometheus_notifications_queue_capacity",
        "The capacity of the alert notifications queue.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_notifications_queue_capacity",
        &[],
        n.queue_capacity() as f64,
    );
    let (active, _) = n.alertmanagers();
    w.family(
        "prometheus_notifications_alertmanagers_discovered",
        "The number of alertmanagers discovered and active.",
        Kind::Gauge,
    );
    w.sample(
        "prometheus_notifications_alertmanagers_discovered",
        &[],
        active.len() as f64,
    );
    w.family(
        "prometheus_notifications_sent_total",
        "Total number of alerts sent.",
        Kind::Counter,
    );
    for (url, v) in m.sent.borrow().iter() {
        w.sample(
            "prometheus_notifications_sent_total",
            &[("alertmanager", url)],
            *v as f64,
        );
    }
    w.family(
        "prometheus_notifications_errors_total",
        "Total number of errors sending alert notifications.",
        Kind::Counter,
    );
    for (url, v) in m.errors.borrow().iter() {
        w.sample(
            "prometheus_notifications_errors_total",
            &[("alertmanager", url)],
            *v as f64,
        );
    }
}
