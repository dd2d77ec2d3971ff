//! The protocol end to end in one process: real shards on their own executors, the router on
//! another, talking over the shared channels.

use std::rc::Rc;

use glommio::channels::shared_channel;
use glommio::LocalExecutorBuilder;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::index::matcher::{MatchType, Matcher};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::string_list::StringList;
use shards::value::{is_stale_nan, stale_nan};
use shards::wal::PageCacheFs;

use super::protocol::{Envelope, Reply};
use super::shard_link::ShardLink;
use super::shard_service::ShardService;
use super::Router;

const SHARDS: usize = 2;

fn labels(name: &str, i: usize) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())]).unwrap()
}

/// Starts `SHARDS` real shards on their own executors and runs `test` with a router to them
/// on another; closes everything afterwards.
fn with_router<F, Fut>(test: F)
where
    F: FnOnce(Rc<Router>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let mut shard_threads = Vec::new();
    let mut ends = Vec::new();
    for i in 0..SHARDS {
        let (req_tx, req_rx) = shared_channel::new_bounded::<Envelope>(4);
        let (rep_tx, rep_rx) = shared_channel::new_bounded::<Reply>(4);
        ends.push((req_tx, rep_rx));
        let path = dir.path().join(format!("shard-{i:03}"));
        shard_threads.push(
            LocalExecutorBuilder::default()
                .spawn(move || async move {
                    let (shard, _) =
                        Shard::open(&path, ShardOptions::default(), PageCacheFs, |_| {})
                            .await
                            .unwrap();
                    let requests = req_rx.connect().await;
                    let replies = rep_tx.connect().await;
                    let shard = ShardService::new(shard).serve(requests, replies).await;
                    shard.close().await.unwrap();
                })
                .unwrap(),
        );
    }
    let router_thread = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let mut links = Vec::new();
            for (i, (req_tx, rep_rx)) in ends.into_iter().enumerate() {
                links.push(ShardLink::start(
                    i,
                    req_tx.connect().await,
                    rep_rx.connect().await,
                ));
            }
            let router = Rc::new(Router::new(links));
            test(router.clone()).await;
            router.close();
        })
        .unwrap();
    router_thread.join().unwrap();
    for t in shard_threads {
        t.join().unwrap();
    }
}

#[test]
fn appends_land_on_their_shards_and_fan_out_reads_merge() {
    with_router(|router| async move {
        // Many more batches than the queues hold: nothing is lost.
        let series: Vec<Labels> = (0..50).map(|i| labels("m", i)).collect();
        let mut refs = vec![0u64; series.len()];
        for t in 0..20i64 {
            let mut pending = Vec::new();
            for (shard, batch) in batches(&router, &series, &refs, t).into_iter().enumerate() {
                pending.push((
                    shard,
                    router.send_append(shard, batch.0).await.unwrap(),
                    batch.1,
                ));
            }
            for (shard, p, idx) in pending {
                let out = Router::appended(shard, p).await.unwrap();
                assert_eq!(out.appended as usize, idx.len());
                for (k, r) in out.series_refs.iter().enumerate() {
                    refs[idx[k]] = *r;
                }
            }
        }
        let all = [Matcher::new(MatchType::Equal, "__name__", "m").unwrap()];
        let found = router.series(&all, i64::MIN, i64::MAX).await.unwrap();
        let mut want = series.clone();
        want.sort();
        assert_eq!(found, want);
        let values = router.label_values("i", &all).await.unwrap();
        let values = StringList::merge(values.iter().map(StringList::iter));
        assert_eq!(values.len(), 50);
        let values: Vec<&str> = values.iter().collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        let names = router.label_names(&[]).await.unwrap();
        assert_eq!(
            StringList::merge(names.iter().map(StringList::iter))
                .iter()
                .collect::<Vec<_>>(),
            ["__name__", "i"]
        );
        let latest = router.latest(&all, 19, 5).await.unwrap();
        assert_eq!(latest.len(), 50);
        assert!(latest.iter().all(|s| s.t == 19 && s.v == 19.0));
        let older = router.latest(&all, 10, 5).await.unwrap();
        assert!(older.iter().all(|s| s.t == 10));

        // A staleness marker hides the series from instant reads.
        let stale = AppendBatch {
            new_series: vec![],
            samples: vec![BatchSample {
                series: SeriesKey::Ref(refs[0]),
                t: 20,
                v: stale_nan(),
            }],
            start_timestamps: Vec::new(),
        };
        let shard = router.shard_of(series[0].hash());
        let p = router.send_append(shard, stale).await.unwrap();
        Router::appended(shard, p).await.unwrap();
        assert_eq!(router.latest(&all, 20, 5).await.unwrap().len(), 49);

        let stats = router.stats().await.unwrap();
        assert_eq!(stats.iter().map(|s| s.series).sum::<u64>(), 50);
        assert_eq!(
            stats.iter().map(|s| s.head.samples_appended).sum::<u64>(),
            50 * 20 + 1
        );

        // Scrapes queued together reach each shard as one group: one WAL write.
        let mut pending = Vec::new();
        for t in 21..26i64 {
            for (shard, (batch, idx)) in batches(&router, &series, &refs, t).into_iter().enumerate()
            {
                let p = router.send_append(shard, batch).await.unwrap();
                pending.push((shard, p, idx.len()));
            }
        }
        for (shard, p, n) in pending {
            let out = Router::appended(shard, p).await.unwrap();
            assert_eq!(out.appended as usize, n);
        }
        let grouped = router.stats().await.unwrap();
        for (before, after) in stats.iter().zip(&grouped) {
            assert_eq!(after.batches_appended - before.batches_appended, 5);
            assert_eq!(after.wal_writes - before.wal_writes, 1);
        }
    });
}

/// One batch per shard for all `series` at time `t`, with the index of each sample's series.
fn batches(
    router: &Router,
    series: &[Labels],
    refs: &[u64],
    t: i64,
) -> Vec<(AppendBatch, Vec<usize>)> {
    let mut out: Vec<(AppendBatch, Vec<usize>)> =
        (0..router.shards()).map(|_| Default::default()).collect();
    for (i, l) in series.iter().enumerate() {
        let (batch, idx) = &mut out[router.shard_of(l.hash())];
        let key = if refs[i] != 0 {
            SeriesKey::Ref(refs[i])
        } else {
            batch.new_series.push(l.clone());
            SeriesKey::New(batch.new_series.len() as u32 - 1)
        };
        batch.samples.push(BatchSample {
            series: key,
            t,
            v: t as f64,
        });
        idx.push(i);
    }
    out
}

/// Appends each series' whole history in one batch of its own.
async fn append_histories(router: &Router, histories: &[(Labels, Vec<(i64, f64)>)]) {
    for (l, samples) in histories {
        let shard = router.shard_of(l.hash());
        let batch = AppendBatch {
            new_series: vec![l.clone()],
            samples: samples
                .iter()
                .map(|&(t, v)| BatchSample {
                    series: SeriesKey::New(0),
                    t,
                    v,
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        let p = router.send_append(shard, batch).await.unwrap();
        let out = Router::appended(shard, p).await.unwrap();
        assert_eq!(out.appended as usize, samples.len(), "{out:?}");
    }
}

#[test]
fn select_returns_whole_ranges_across_shards_sorted_with_stale_markers() {
    with_router(|router| async move {
        const STEP: i64 = 1_000; // all series within the head's appendable window
        const N: i64 = 500; // several chunks per series
        const STALE_AT: i64 = 250;
        let mut histories = Vec::new();
        for i in 0..10 {
            let samples = (0..N)
                .map(|k| {
                    let v = if i == 3 && k == STALE_AT {
                        stale_nan()
                    } else {
                        (i * 1000) as f64 + k as f64
                    };
                    (k * STEP, v)
                })
                .collect();
            histories.push((labels("a", i), samples));
        }
        // Only samples before the range: left out of it.
        histories.push((labels("old", 0), vec![(0, 1.0), (STEP, 2.0)]));
        append_histories(&router, &histories).await;
        let stats = router.stats().await.unwrap();
        let chunks: u64 = stats.iter().map(|s| s.head.chunks_created).sum();
        assert!(
            chunks > 3 * 11,
            "each long series spans several chunks: {chunks}"
        );

        let name = [Matcher::new(MatchType::Regex, "__name__", "a|old").unwrap()];
        let (mint, maxt) = (100 * STEP, 400 * STEP);
        let got = router.select(&name, mint, maxt).await.unwrap();
        assert_eq!(
            got.len(),
            10,
            "the series without samples in range is left out"
        );
        assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
        let shards: std::collections::BTreeSet<usize> = got
            .iter()
            .map(|s| router.shard_of(s.labels.hash()))
            .collect();
        assert_eq!(shards.len(), SHARDS, "the series span every shard");
        for s in &got {
            let i: usize = s.labels.get("i").unwrap().parse().unwrap();
            // Both bounds inclusive.
            assert_eq!(s.points.len(), 301);
            assert_eq!(s.points.first().unwrap().t, mint);
            assert_eq!(s.points.last().unwrap().t, maxt);
            for (p, k) in s.points.iter().zip(100..) {
                assert_eq!(p.t, k * STEP);
                if i == 3 && k == STALE_AT {
                    assert!(is_stale_nan(p.f), "staleness markers come through");
                } else {
                    assert_eq!(p.f, (i * 1000) as f64 + k as f64);
                }
            }
        }

        // The whole history, and a range between two samples.
        let all = router.select(&name, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(all.len(), 11);
        assert!(all
            .iter()
            .filter(|s| s.labels.get("__name__") == Some("a"))
            .all(|s| s.points.len() == N as usize));
        let between = router.select(&name, STEP + 1, 2 * STEP - 1).await.unwrap();
        assert!(between.is_empty());
        let none = [Matcher::new(MatchType::Equal, "__name__", "nope").unwrap()];
        assert!(router.select(&none, mint, maxt).await.unwrap().is_empty());
    });
}

#[test]
fn a_delete_covers_the_appends_still_in_the_outboxes() {
    with_router(|router| async move {
        let series: Vec<Labels> = (0..20).map(|i| labels("d", i)).collect();
        let refs = vec![0u64; series.len()];
        // Pushed, not acknowledged: the batches wait in the outboxes for their window when
        // the delete is requested.
        let mut pending = Vec::new();
        for (shard, (batch, idx)) in batches(&router, &series, &refs, 5).into_iter().enumerate() {
            pending.push((shard, router.send_append(shard, batch).await.unwrap(), idx));
        }
        let all = vec![Matcher::new(MatchType::Equal, "__name__", "d").unwrap()];
        let selectors = vec![all.clone()];
        router
            .admin(|| super::protocol::ShardRequest::DeleteSeries {
                selectors: selectors.clone(),
                mint: i64::MIN,
                maxt: i64::MAX,
            })
            .await
            .unwrap();
        for (shard, p, idx) in pending {
            let out = Router::appended(shard, p).await.unwrap();
            assert_eq!(out.appended as usize, idx.len());
        }
        assert!(router.latest(&all, 5, 5).await.unwrap().is_empty());
        let selected = router.select(&all, i64::MIN, i64::MAX).await.unwrap();
        assert!(selected.iter().all(|s| s.points.is_empty()), "{selected:?}");
    });
}

/// Leaves over more series than a shard evaluates in one batch (`shard_leaf`), and more than
/// a selecting aggregation holds before picking early (`LeafParts`): the shards' batches,
/// folded, picked from and concatenated, give exactly what the router computes from the
/// selected series, ties in picks and sums' bits included.
#[test]
fn leaves_over_many_batches_give_the_router_only_answers() {
    use crate::promql::{Engine, EngineOptions, QueryParams};
    with_router(|router| async move {
        const SERIES: usize = 5_000;
        const STEP: i64 = 15_000;
        let mut per_shard: Vec<AppendBatch> = (0..router.shards())
            .map(|_| AppendBatch::default())
            .collect();
        for i in 0..SERIES {
            let l = Labels::from_pairs([
                ("__name__", "c".to_string()),
                ("g", (i % 7).to_string()),
                ("i", i.to_string()),
            ])
            .unwrap();
            let batch = &mut per_shard[router.shard_of(l.hash())];
            batch.new_series.push(l);
            let key = SeriesKey::New(batch.new_series.len() as u32 - 1);
            for k in 0..40 {
                // Few distinct rates (ties for topk) and a fraction that makes sums inexact.
                let v = ((i % 5) as f64 + 1.0) * k as f64 + (i % 3) as f64 / 3.0;
                batch.samples.push(BatchSample {
                    series: key,
                    t: k * STEP,
                    v,
                });
            }
        }
        for (shard, batch) in per_shard.into_iter().enumerate() {
            let p = router.send_append(shard, batch).await.unwrap();
            Router::appended(shard, p).await.unwrap();
        }
        let pushed = Engine::new(EngineOptions::default());
        let router_only = Engine::new(EngineOptions {
            pushdown: false,
            ..EngineOptions::default()
        });
        let params = QueryParams::default();
        let end = 39 * STEP;
        for q in [
            "c",
            "sum by (g) (rate(c[5m]))",
            "avg(rate(c[2m]))",
            "topk(7, rate(c[5m]))",
            "bottomk by (g) (2, c)",
            "count without (i) (c)",
        ] {
            let a = pushed
                .instant_query(&*router, q, end, &params)
                .await
                .unwrap();
            let b = router_only
                .instant_query(&*router, q, end, &params)
                .await
                .unwrap();
            assert_eq!(a.value, b.value, "{q}");
            let a = pushed
                .range_query(&*router, q, 10 * STEP, end, 60_000, &params)
                .await
                .unwrap();
            let b = router_only
                .range_query(&*router, q, 10 * STEP, end, 60_000, &params)
                .await
                .unwrap();
            assert_eq!(a.value, b.value, "{q}");
        }
        let all = pushed
            .instant_query(&*router, "c", end, &params)
            .await
            .unwrap();
        let crate::promql::value::Value::Vector(v) = all.value else {
            panic!("an instant vector");
        };
        assert_eq!(
            v.len(),
            SERIES,
            "every series, over several batches per shard"
        );
    });
}
