//! The protocol end to end in one process: real shards on their own executors, the router on
//! another, talking over the shared channels.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use glommio::channels::shared_channel;
use glommio::LocalExecutorBuilder;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::index::matcher::{MatchType, Matcher};
use shards::label_generation::PUBLISHED_VALUES_MAX;
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

/// How many requests the router has sent to each shard so far.
fn requests_per_shard(router: &Router) -> Vec<u64> {
    router
        .links()
        .iter()
        .map(|l| l.stats.requests.get())
        .collect()
}

/// Starts `SHARDS` real shards on their own executors and runs `test` with a router to them
/// on another; closes everything afterwards.
fn with_router<F, Fut>(test: F)
where
    F: FnOnce(Rc<Router>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    with_router_over(ShardOptions::default(), test)
}

/// `with_router` with shards opened with `opts`.
fn with_router_over<F, Fut>(opts: ShardOptions, test: F)
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
        let labels = Arc::new(OnceLock::new());
        ends.push((req_tx, rep_rx, labels.clone()));
        let path = dir.path().join(format!("shard-{i:03}"));
        let opts = opts.clone();
        shard_threads.push(
            LocalExecutorBuilder::default()
                .spawn(move || async move {
                    let (shard, _) = Shard::open(&path, opts, PageCacheFs, |_| {}).await.unwrap();
                    labels.set(shard.label_generation()).unwrap();
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
            for (i, (req_tx, rep_rx, labels)) in ends.into_iter().enumerate() {
                let (requests, replies) = (req_tx.connect().await, rep_rx.connect().await);
                let labels = labels.get().unwrap().clone();
                links.push(ShardLink::start(i, requests, replies, labels));
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
        let values = label_answer_of(
            &router,
            super::LabelRequest::Values("i"),
            &[all.to_vec()],
            (i64::MIN, i64::MAX),
            "m",
        )
        .await;
        assert_eq!(values.len(), 50);
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        let names = label_answer(&router, super::LabelRequest::Names, (i64::MIN, i64::MAX)).await;
        assert_eq!(names, ["__name__", "i"]);
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
        delete_all_time(&router, vec![all.clone()]).await;
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

/// The label request `request` over every series in `range`, through the router's kept
/// answers: the merged list, one string per line. Whenever the shards' published tables
/// answer it too (what the other cores' listeners answer from, `api::front`), they must give
/// the same list.
async fn label_answer(
    router: &Router,
    request: super::LabelRequest<'_>,
    range: (i64, i64),
) -> Vec<String> {
    let answer = label_answer_of(router, request, &[Vec::new()], range, "").await;
    let generations = router.links().iter().map(|l| l.label_generation());
    if let Some((_, lists)) = super::published_label_lists(generations, request, range.0, range.1) {
        let merged = StringList::merge(lists.iter().map(|l| l.iter()));
        let published: Vec<String> = merged.iter().map(str::to_owned).collect();
        assert_eq!(
            published, answer,
            "published tables vs the router, {request:?}"
        );
    }
    answer
}

/// `label_answer` over the series matching any of `selectors`, kept under `key` (what the
/// API adds for a limit and the selectors' text).
async fn label_answer_of(
    router: &Router,
    request: super::LabelRequest<'_>,
    selectors: &[Vec<Matcher>],
    range: (i64, i64),
    key: &str,
) -> Vec<String> {
    let body = router
        .label_answer(request, selectors, range, key, |lists| {
            let merged = StringList::merge(lists.iter().map(|l| l.iter()));
            merged.iter().collect::<Vec<_>>().join("\n").into_bytes()
        })
        .await
        .unwrap();
    let text = String::from_utf8(body.bytes().to_vec()).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// The first label set `make(i)` whose series lives on `shard`.
fn on_shard(router: &Router, shard: usize, make: impl Fn(usize) -> Labels) -> Labels {
    (0..)
        .map(make)
        .find(|l| router.shard_of(l.hash()) == shard)
        .unwrap()
}

/// A kept label answer is given again only while it is exactly what the shards would
/// answer: a new series, a new label name or value, a head truncation and a block rewritten
/// without deleted series each show in the next answer, while new samples of known series do
/// not make the shards be asked again.
#[test]
fn kept_label_answers_follow_every_change_of_the_shards() {
    use super::LabelRequest::{Names, Values};
    let mut opts = ShardOptions::default();
    // Blocks of 1 s of sample time: a few seconds of samples make the head compactable.
    opts.head.chunk_range = 1_000;
    with_router_over(opts, |router| async move {
        let pair = |n: &str, v: String| Labels::from_pairs([("__name__", "m".into()), (n, v)]);
        let late = pair("x", "late".into()).unwrap();
        let shard = router.shard_of(late.hash());
        // Every series on the shard that compacts, so that its head holds them all.
        let one = on_shard(&router, shard, |i| pair("x", format!("1-{i}")).unwrap());
        let two = on_shard(&router, shard, |i| pair("x", format!("2-{i}")).unwrap());
        let y = on_shard(&router, shard, |i| pair("y", format!("{i}")).unwrap());
        let all = (i64::MIN, i64::MAX);
        let x = |l: &Labels| l.get("x").unwrap().to_string();

        append_histories(&router, &[(one.clone(), vec![(100, 1.0)])]).await;
        assert_eq!(label_answer(&router, Values("x"), all).await, [x(&one)]);
        let counts = router.label_answer_stats();
        assert_eq!(label_answer(&router, Values("x"), all).await, [x(&one)]);
        let now = router.label_answer_stats();
        assert_eq!((now.hits, now.misses), (counts.hits + 1, counts.misses));

        // A new label value, then a new label name, show at once.
        append_histories(&router, &[(two.clone(), vec![(200, 2.0)])]).await;
        let mut xs = vec![x(&one), x(&two)];
        xs.sort();
        assert_eq!(label_answer(&router, Values("x"), all).await, xs);
        assert_eq!(label_answer(&router, Names, all).await, ["__name__", "x"]);
        append_histories(&router, &[(y.clone(), vec![(300, 3.0)])]).await;
        assert_eq!(
            label_answer(&router, Names, all).await,
            ["__name__", "x", "y"]
        );
        // Sources that do not overlap the range are not read: nothing before the first
        // sample.
        assert!(label_answer(&router, Values("x"), (0, 99)).await.is_empty());

        // `late` keeps the head going until it spans 1.3 s: not compactable yet.
        let history = |from: i64, to: i64| (from..=to).step_by(100).map(|t| (t, 1.0)).collect();
        append_histories(&router, &[(late.clone(), history(100, 1400))]).await;
        let range = (1_350, 5_000);
        let mut before = xs.clone();
        before.push("late".into());
        before.sort();
        assert_eq!(label_answer(&router, Values("x"), range).await, before);
        // New samples of a known series: the same answer, from the router.
        let counts = router.label_answer_stats();
        let p = router
            .send_append(
                shard,
                AppendBatch {
                    new_series: vec![],
                    samples: vec![BatchSample {
                        series: SeriesKey::Ref(router_ref(&router, &late).await),
                        t: 1_450,
                        v: 1.0,
                    }],
                    start_timestamps: Vec::new(),
                },
            )
            .await
            .unwrap();
        Router::appended(shard, p).await.unwrap();
        assert_eq!(label_answer(&router, Values("x"), range).await, before);
        let now = router.label_answer_stats();
        assert_eq!((now.hits, now.misses), (counts.hits + 1, counts.misses));

        // Head compaction: blocks [0, 1000) … [3000, 4000) written, the head truncated to
        // 4000, and the series with no sample since gone from it. Over the range only the
        // blocks from 1000 on and the head are read: `late` alone.
        let more: Vec<(i64, f64)> = history(1500, 5000);
        append_to(&router, &late, &more).await;
        let compacted = async {
            loop {
                let stats = router.stats().await.unwrap();
                if stats[shard].blocks == 4 && stats[shard].time_range.is_some_and(|r| r.0 >= 4000)
                {
                    return;
                }
                glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let waited = within(std::time::Duration::from_secs(60), compacted).await;
        assert!(waited, "the head was never compacted");
        assert_eq!(label_answer(&router, Values("x"), range).await, ["late"]);
        assert_eq!(label_answer(&router, Values("x"), all).await, before);
        // Names too (from the tables the shards published with the new block list): `y`
        // only in the first block.
        assert_eq!(label_answer(&router, Names, range).await, ["__name__", "x"]);
        assert_eq!(
            label_answer(&router, Names, all).await,
            ["__name__", "x", "y"]
        );

        // A delete leaves label values as they are until the block is rewritten without the
        // series (as in Prometheus, whose index readers ignore tombstones).
        let gone = vec![Matcher::new(MatchType::Equal, "x", x(&one)).unwrap()];
        delete_all_time(&router, vec![gone]).await;
        assert_eq!(label_answer(&router, Values("x"), all).await, before);
        router
            .admin(|| super::protocol::ShardRequest::CleanTombstones)
            .await
            .unwrap();
        let after: Vec<String> = before.into_iter().filter(|v| *v != x(&one)).collect();
        assert_eq!(label_answer(&router, Values("x"), all).await, after);
    });
}

/// Over every series (no `match[]`), a kept `labels` or `label/<n>/values` answer depends
/// only on the name set or on `n`'s value set: new series made of existing (name, value)
/// pairs leave all three answers kept and right, a new `instance` value recomputes only
/// `instance` values, and the series with that value leaving the head at its truncation
/// takes it out of the next `instance` answer.
#[test]
fn label_answers_over_every_series_survive_series_of_known_pairs() {
    use super::LabelRequest::{Names, Values};
    let mut opts = ShardOptions::default();
    opts.head.chunk_range = 1_000;
    with_router_over(opts, |router| async move {
        let series = |job: &str, instance: String| {
            Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("instance", instance),
                ("job", job.to_string()),
            ])
            .unwrap()
        };
        let shard = router.shard_of(series("a", "x".into()).hash());
        let here = |l: &Labels| router.shard_of(l.hash()) == shard;
        // `known` is made only of pairs that `first` and `second` bring to the shard.
        let first = series("a", "x".into());
        let (second, known) = (0..)
            .map(|i| (series("b", format!("{i}")), series("a", format!("{i}"))))
            .find(|(b, a)| here(b) && here(a))
            .unwrap();
        let fresh = on_shard(&router, shard, |i| series("a", format!("new-{i}")));
        let all = (i64::MIN, i64::MAX);
        let requests = [Names, Values("job"), Values("instance")];
        let answers = async || {
            let mut out = Vec::new();
            for r in requests {
                out.push(label_answer(&router, r, all).await);
            }
            out
        };
        let instance = |l: &Labels| l.get("instance").unwrap().to_string();
        let mut instances = vec![instance(&first), instance(&second)];
        instances.sort();
        let names = ["__name__", "instance", "job"];

        append_histories(
            &router,
            &[
                (first.clone(), vec![(100, 1.0)]),
                (second.clone(), vec![(100, 1.0)]),
            ],
        )
        .await;
        let want = vec![
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            vec!["a".to_string(), "b".to_string()],
            instances.clone(),
        ];
        assert_eq!(answers().await, want);

        // A new series of known pairs: the shard's generation moves, the answers stay.
        let counts = router.label_answer_stats();
        append_histories(&router, &[(known.clone(), vec![(200, 1.0)])]).await;
        assert_eq!(answers().await, want);
        let now = router.label_answer_stats();
        assert_eq!((now.hits, now.misses), (counts.hits + 3, counts.misses));

        // A new `instance` value: only that answer is recomputed, and shows it.
        append_histories(&router, &[(fresh.clone(), vec![(300, 1.0)])]).await;
        let counts = router.label_answer_stats();
        let mut with_fresh = want.clone();
        with_fresh[2].push(instance(&fresh));
        with_fresh[2].sort();
        assert_eq!(answers().await, with_fresh);
        let now = router.label_answer_stats();
        assert_eq!((now.hits, now.misses), (counts.hits + 2, counts.misses + 1));

        // The head compacts up to 4000 and is truncated there: `fresh`, with no sample
        // since, leaves it; the others carry on. Over a range that reads the head and the
        // blocks from 1000 on (`fresh` is only in the first), its value goes.
        // Step by step across the series, each step's batches in one window of the outbox:
        // the head takes nothing older than half a chunk range before its newest sample.
        let carry = async |from: i64, to: i64| {
            for t in (from..=to).step_by(400) {
                let mut pending = Vec::new();
                for l in [&first, &second, &known] {
                    let batch = AppendBatch {
                        new_series: vec![l.clone()],
                        samples: (t..=to.min(t + 300))
                            .step_by(100)
                            .map(|t| BatchSample {
                                series: SeriesKey::New(0),
                                t,
                                v: 1.0,
                            })
                            .collect(),
                        start_timestamps: Vec::new(),
                    };
                    pending.push(router.send_append(shard, batch).await.unwrap());
                }
                for p in pending {
                    let out = Router::appended(shard, p).await.unwrap();
                    assert_eq!(out.out_of_bounds, 0, "{out:?}");
                }
            }
        };
        // Spanning 1.3 s, the head is not compactable yet.
        carry(400, 1400).await;
        let later = (1_350, 5_000);
        assert_eq!(
            label_answer(&router, Values("instance"), later).await,
            with_fresh[2]
        );
        carry(1500, 5000).await;
        // Compaction goes a step after each append: keep appending until it is done.
        let truncated = async {
            for t in (5100..).step_by(100) {
                let stats = router.stats().await.unwrap();
                if stats[shard].time_range.is_some_and(|r| r.0 >= 4000) {
                    return;
                }
                append_to(&router, &first, &[(t, 1.0)]).await;
            }
        };
        let waited = within(std::time::Duration::from_secs(60), truncated).await;
        assert!(waited, "the head was never truncated");
        assert_eq!(
            label_answer(&router, Values("instance"), later).await,
            want[2]
        );
        assert_eq!(label_answer(&router, Values("job"), later).await, want[1]);
        assert_eq!(label_answer(&router, Names, later).await, want[0]);
    });
}

/// A label answer not kept whole (here: a new key each time, as a new `limit` gives) is
/// merged from the shard lists the router kept, and only the shards whose lists are stale
/// are asked: none for a repeat, the changed shard alone after a change. Each answer is the
/// shards' answer: a new value, a new name, and (with a selector) a new series of known
/// pairs in one shard all show, while the other shard's list is reused. (`x` has more
/// values on shard 0 than a shard publishes, so its values are asked for.)
#[test]
fn label_answers_merge_kept_shard_lists_and_ask_only_changed_shards() {
    use super::LabelRequest::{Names, Values};
    with_router(|router| async move {
        let series = |x: String, k: &str| {
            Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("k", k.to_string()),
                ("x", x),
            ])
            .unwrap()
        };
        let here = |l: &Labels, shard| router.shard_of(l.hash()) == shard;
        let other = on_shard(&router, 1, |i| series(format!("b-{i}"), "1"));
        // On shard 0: `first`, `second`, and `known`, made only of their pairs.
        let (first, second, known) = (0..)
            .flat_map(|i| (0..50).map(move |j| (i, j)))
            .map(|(i, j)| {
                let (a, c) = (format!("a-{i}"), format!("c-{j}"));
                (series(a, "1"), series(c.clone(), "2"), series(c, "1"))
            })
            .find(|(f, s, k)| here(f, 0) && here(s, 0) && here(k, 0))
            .unwrap();
        let fresh = on_shard(&router, 0, |i| series(format!("d-{i}"), "1"));
        let fillers: Vec<Labels> = (0..)
            .map(|i| series(format!("f-{i}"), "3"))
            .filter(|l| here(l, 0))
            .take(PUBLISHED_VALUES_MAX)
            .collect();
        let named = on_shard(&router, 0, |i| {
            Labels::from_pairs([("__name__", "m".to_string()), ("y", i.to_string())]).unwrap()
        });
        let all = (i64::MIN, i64::MAX);
        let x = |l: &Labels| l.get("x").unwrap().to_string();
        let k1 = [vec![Matcher::new(MatchType::Equal, "k", "1").unwrap()]];
        let keys = std::cell::Cell::new(0);
        let key = || {
            keys.set(keys.get() + 1);
            format!("limit={}", keys.get())
        };
        let asked = || requests_per_shard(&router);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        for l in [&other, &first, &second].into_iter().chain(&fillers) {
            append_histories(&router, &[(l.clone(), vec![(100, 1.0)])]).await;
        }
        let values = sorted(
            [&other, &first, &second]
                .into_iter()
                .chain(&fillers)
                .map(x)
                .collect(),
        );
        let every = [Vec::new()];
        assert_eq!(
            label_answer_of(&router, Values("x"), &every, all, &key()).await,
            values
        );

        // Another key: no shard asked, the same answer.
        let (before, lists) = (asked(), router.label_list_stats());
        assert_eq!(
            label_answer_of(&router, Values("x"), &every, all, &key()).await,
            values
        );
        let now = router.label_list_stats();
        assert_eq!(asked(), before);
        assert_eq!((now.hits, now.misses), (lists.hits + 2, lists.misses));

        // A new value on shard 0: shard 0 alone is asked, and the value shows.
        append_histories(&router, &[(fresh.clone(), vec![(200, 1.0)])]).await;
        let before = asked();
        let mut with_fresh = values.clone();
        with_fresh.push(x(&fresh));
        let with_fresh = sorted(with_fresh);
        assert_eq!(
            label_answer_of(&router, Values("x"), &every, all, &key()).await,
            with_fresh
        );
        assert_eq!(asked(), [before[0] + 1, before[1]]);

        // `labels` over every series comes from the name tables the shards publish: no
        // shard is asked, even right after a new name on shard 0, which shows.
        let before = asked();
        assert_eq!(
            label_answer_of(&router, Names, &every, all, &key()).await,
            ["__name__", "k", "x"]
        );
        assert_eq!(asked(), before);
        append_histories(&router, &[(named.clone(), vec![(300, 1.0)])]).await;
        let before = asked();
        assert_eq!(
            label_answer_of(&router, Names, &every, all, &key()).await,
            ["__name__", "k", "x", "y"]
        );
        // Only the sources overlapping the range: nothing before the first sample.
        assert!(label_answer_of(&router, Names, &every, (0, 99), &key())
            .await
            .is_empty());
        assert_eq!(asked(), before);
        // With a selector, the shards are asked.
        assert_eq!(
            label_answer_of(&router, Names, &k1, all, &key()).await,
            ["__name__", "k", "x"]
        );
        assert_eq!(asked(), [before[0] + 1, before[1] + 1]);

        // With a selector, a list depends on the series: `known` adds no new pair to shard 0
        // but does add its `x` value to those of `{k="1"}`.
        let selected = sorted(vec![x(&other), x(&first), x(&fresh)]);
        assert_eq!(
            label_answer_of(&router, Values("x"), &k1, all, &key()).await,
            selected
        );
        append_histories(&router, &[(known.clone(), vec![(400, 1.0)])]).await;
        let before = asked();
        assert_eq!(
            label_answer_of(&router, Values("x"), &k1, all, &key()).await,
            sorted([selected, vec![x(&known)]].concat())
        );
        assert_eq!(asked(), [before[0] + 1, before[1]]);
        // Over every series, the same change left `x`'s value set and its lists as they were.
        let before = asked();
        assert_eq!(
            label_answer_of(&router, Values("x"), &every, all, &key()).await,
            with_fresh
        );
        assert_eq!(asked(), before);

        // A range that reads other sources is asked again, with a selector.
        let before = asked();
        assert!(label_answer_of(&router, Values("x"), &k1, (0, 99), &key())
            .await
            .is_empty());
        assert_eq!(asked(), [before[0] + 1, before[1] + 1]);
    });
}

/// The values of a name with few values in every source come from the sets the shards
/// publish with their generation: no shard is asked, even for the first request after a new
/// value, which shows. A name with more values in a shard than it publishes is asked of the
/// shards, and a range reading no source asks none.
#[test]
fn small_value_sets_answer_label_values_without_asking_the_shards() {
    use super::LabelRequest::Values;
    with_router(|router| async move {
        let series = |job: String, i: usize| {
            Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("i", i.to_string()),
                ("job", job),
            ])
            .unwrap()
        };
        let asked = || requests_per_shard(&router);
        let all = (i64::MIN, i64::MAX);
        let every = [Vec::new()];
        // A new key each time, as a new `limit` gives: never the kept whole answer.
        let keys = std::cell::Cell::new(0);
        let values = async |name: &str, range: (i64, i64)| {
            keys.set(keys.get() + 1);
            let key = format!("limit={}", keys.get());
            label_answer_of(&router, Values(name), &every, range, &key).await
        };
        let mut jobs: Vec<String> = Vec::new();
        for shard in 0..SHARDS {
            let l = on_shard(&router, shard, |i| series(format!("j-{shard}"), i));
            append_histories(&router, &[(l, vec![(100, 1.0)])]).await;
            jobs.push(format!("j-{shard}"));
        }
        let before = asked();
        assert_eq!(values("job", all).await, jobs);
        assert_eq!(asked(), before);

        // A new `job` value on shard 0, then on shard 1: each shows at once, nobody asked.
        for shard in 0..SHARDS {
            let l = on_shard(&router, shard, |i| series(format!("new-{shard}"), i));
            append_histories(&router, &[(l, vec![(200, 1.0)])]).await;
            jobs.push(format!("new-{shard}"));
            jobs.sort();
            let before = asked();
            assert_eq!(values("job", all).await, jobs);
            assert_eq!(values("job", (0, 99)).await, Vec::<String>::new());
            assert_eq!(asked(), before);
        }

        // `i` grows past what shard 0 publishes: the shards are asked, and answer it all.
        let many: Vec<Labels> = (0..)
            .map(|i| series("j-0".into(), 1000 + i))
            .filter(|l| router.shard_of(l.hash()) == 0)
            .take(PUBLISHED_VALUES_MAX)
            .collect();
        let histories: Vec<_> = many.iter().map(|l| (l.clone(), vec![(300, 1.0)])).collect();
        append_histories(&router, &histories).await;
        let before = asked();
        let got = values("i", all).await;
        assert_eq!(asked(), [before[0] + 1, before[1] + 1]);
        assert!(got.len() > PUBLISHED_VALUES_MAX, "{}", got.len());
        // `job` is still published by both.
        let before = asked();
        assert_eq!(values("job", all).await, jobs);
        assert_eq!(asked(), before);
    });
}

/// The shard's ref of series `l` (created by an earlier append).
/// Deletes the series of `selectors` on every shard, over all time.
async fn delete_all_time(router: &Router, selectors: Vec<Vec<Matcher>>) {
    router
        .admin(|| super::protocol::ShardRequest::DeleteSeries {
            selectors: selectors.clone(),
            mint: i64::MIN,
            maxt: i64::MAX,
        })
        .await
        .unwrap();
}

async fn router_ref(router: &Router, l: &Labels) -> u64 {
    let shard = router.shard_of(l.hash());
    let batch = AppendBatch {
        new_series: vec![l.clone()],
        samples: vec![],
        start_timestamps: Vec::new(),
    };
    let p = router.send_append(shard, batch).await.unwrap();
    Router::appended(shard, p).await.unwrap().series_refs[0]
}

/// Appends `samples` to the existing series `l`.
async fn append_to(router: &Router, l: &Labels, samples: &[(i64, f64)]) {
    let shard = router.shard_of(l.hash());
    let r = router_ref(router, l).await;
    let batch = AppendBatch {
        new_series: vec![],
        samples: samples
            .iter()
            .map(|&(t, v)| BatchSample {
                series: SeriesKey::Ref(r),
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

/// Whether `f` finished within `limit`: the bound on every wait for the shards' background work.
async fn within(limit: std::time::Duration, f: impl std::future::Future<Output = ()>) -> bool {
    futures_lite::future::or(
        async {
            f.await;
            true
        },
        async {
            glommio::timer::sleep(limit).await;
            false
        },
    )
    .await
}
