//! Block compaction end to end: a shard with a 10-minute block range fills 130 minutes with
//! merging off (twelve level-1 blocks), then reopens with merging on (10 → 30 → 90 minutes):
//! the blocks must be merged as Prometheus plans them (no overlap, every length a planned
//! range, levels and parents in meta.json) and every sample readable exactly once. Then a
//! crash between the merged block's rename and its parents' deletion is recreated by putting
//! the parents back: the restart must delete them and still read every sample once. promtool
//! must list and dump the merged blocks with the same samples (skipped without promtool).

mod blocks_common;
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{key, run_local, small_block_options, Samples};
use shards::block::TMP_FOR_DELETION_SUFFIX;
use shards::compact::Progress;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::index::{MatchType, Matcher};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions, OFFLOAD_POLL};
use shards::wal::PageCacheFs;

const RANGE: i64 = 10 * 60 * 1000;
const STEP: i64 = 5_000;
const MINUTES: i64 = 130;
/// On a 90-minute boundary, so that the first nine blocks make one 90-minute block.
const T0: i64 = 1_700_000_400_000 / (9 * RANGE) * (9 * RANGE);

fn options(max_block: i64) -> ShardOptions {
    let mut o = small_block_options(RANGE, 64 * 1024);
    o.compaction.series_per_step = 5;
    o.compaction.step_budget = Duration::ZERO;
    o.compaction.max_block_duration = max_block;
    // The merges under test run on blocks found at open.
    o.compaction.first_merge_after_open = Duration::ZERO;
    o
}

/// Appends 130 minutes of 12 series (4 of them stop at minute 40) with merging off.
async fn fill(dir: &Path) -> Samples {
    let (mut shard, _) = Shard::open(dir, options(RANGE), PageCacheFs, |_| {})
        .await
        .unwrap();
    let mut refs = [None; 12];
    let mut want = Samples::new();
    for k in 0..MINUTES * 60_000 / STEP {
        let t = T0 + k * STEP;
        let mut b = AppendBatch::default();
        let mut new = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            if i >= 8 && k * STEP >= 40 * 60_000 {
                continue;
            }
            let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap();
            let series = match r {
                Some(r) => SeriesKey::Ref(*r),
                None => {
                    b.new_series.push(l.clone());
                    new.push(i);
                    SeriesKey::New(b.new_series.len() as u32 - 1)
                }
            };
            let v = (k * (i as i64 + 1)) as f64 / 8.0;
            b.samples.push(BatchSample { series, t, v });
            want.entry(key(&l)).or_default().push((t, v.to_bits()));
        }
        let out = shard.append(&b).await.unwrap();
        for (j, &i) in new.iter().enumerate() {
            refs[i] = Some(out.series_refs[j]);
        }
    }
    shard.compact().await.unwrap();
    assert!(shard.blocks().len() >= 8, "{:?}", shard.blocks());
    assert!(shard
        .blocks()
        .iter()
        .all(|b| b.meta().compaction.level == 1));
    shard.close().await.unwrap();
    want
}

/// Every sample of head + blocks, exactly once, equals `want`; blocks do not overlap.
fn check_contents(shard: &Shard, want: &Samples) {
    let mut last_max = i64::MIN;
    for b in shard.blocks() {
        assert!(b.meta().min_time >= last_max, "blocks overlap");
        last_max = b.meta().max_time;
    }
    let q = shard.querier(i64::MIN, i64::MAX);
    let all = Matcher::new(MatchType::Equal, "__name__", "m").unwrap();
    let mut got = Samples::new();
    for s in q.select(&[all]).unwrap() {
        let pts = q.samples(&s).unwrap();
        got.insert(
            key(&s.labels),
            pts.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
        );
    }
    assert_eq!(&got, want, "querier over head + blocks");
}

/// Copies a shard directory as a crash would leave it. A parent renamed for deletion is being
/// removed on the blocking thread meanwhile (its files vanish under the copy), and start-up
/// removes such a directory anyway, so it is not copied.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name()
            .to_string_lossy()
            .ends_with(TMP_FOR_DELETION_SUFFIX)
        {
            continue;
        }
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn blocks_merge_as_planned_and_survive_a_crash_before_parent_deletion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-000");
    let d = dir.clone();
    let want = run_local(move || async move { fill(&d).await });
    // The directory between the 30-minute merges and the 90-minute one.
    let before = tmp.path().join("before");

    let ranges = [RANGE, 3 * RANGE, 9 * RANGE];
    let (d, b) = (dir.clone(), before.clone());
    let w = want.clone();
    let merged = run_local(move || async move {
        let (mut shard, _) = Shard::open(&d, options(9 * RANGE), PageCacheFs, |_| {})
            .await
            .unwrap();
        while shard.block_compaction_stats().compactions < 3 {
            // A merge's files are closed on the blocking thread and completed by a task of
            // this executor: wait for it instead of spinning.
            if shard.compact_step().await.unwrap() == Progress::Waiting {
                glommio::timer::sleep(OFFLOAD_POLL).await;
            }
        }
        copy_dir(&d, &b);
        shard.compact().await.unwrap();
        let stats = shard.block_compaction_stats().clone();
        assert_eq!(stats.failures, 0, "{stats:?}");
        assert!(stats.compactions >= 2, "{stats:?}");
        check_contents(&shard, &w);
        let metas: Vec<_> = shard.blocks().iter().map(|b| b.meta().clone()).collect();
        shard.close().await.unwrap();
        metas
    });
    for m in &merged {
        assert!(ranges.contains(&(m.max_time - m.min_time)), "{m:?}");
    }
    let top = merged
        .iter()
        .max_by_key(|m| m.compaction.level)
        .expect("blocks");
    assert!(
        top.compaction.level >= 3,
        "10 min → 30 min → 90 min: {merged:?}"
    );
    assert_eq!(top.max_time - top.min_time, 9 * RANGE);
    assert_eq!(top.compaction.sources.len(), 9, "{top:?}");

    // Crash after the 90-minute block was renamed into place, before its parents (the
    // 30-minute blocks) went: they come back from `before`.
    let parents: BTreeSet<String> = merged
        .iter()
        .flat_map(|m| m.compaction.parents.iter().map(|p| p.ulid.clone()))
        .collect();
    let mut restored = 0;
    for p in &parents {
        if before.join(p).is_dir() {
            copy_dir(&before.join(p), &dir.join(p));
            restored += 1;
        }
    }
    assert!(restored >= 3, "{parents:?}");
    let d = dir.clone();
    let w = want.clone();
    let p = parents.clone();
    run_local(move || async move {
        let (shard, report) = Shard::open(&d, options(9 * RANGE), PageCacheFs, |_| {})
            .await
            .unwrap();
        assert!(report.failed_blocks.is_empty(), "{report:?}");
        assert!(shard.blocks().iter().all(|b| !p.contains(&b.meta().ulid)));
        check_contents(&shard, &w);
        shard.close().await.unwrap();
    });
    for p in &parents {
        assert!(!dir.join(p).exists(), "parent {p} left on disk");
    }

    let Some(promtool) = blocks_common::promtool() else {
        eprintln!("SKIPPED: promtool not found on PATH (install Debian's `prometheus` package)");
        return;
    };
    let list = promtool.run(&["tsdb", "list", dir.to_str().unwrap()]);
    assert_eq!(list.lines().count(), merged.len() + 1, "{list}");
    let mut got = Samples::new();
    for line in promtool
        .run(&["tsdb", "dump", dir.to_str().unwrap()])
        .lines()
    {
        let (labels, rest) = line.rsplit_once("} ").expect(line);
        let (v, t) = rest.split_once(' ').expect(line);
        let v: f64 = v.parse().unwrap();
        got.entry(format!("{labels}}}"))
            .or_default()
            .push((t.parse().unwrap(), v.to_bits()));
    }
    assert_eq!(got, want, "promtool tsdb dump");
}
