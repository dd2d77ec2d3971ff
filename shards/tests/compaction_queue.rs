//! Compaction in the shard's low-share queue (`compaction_queue`), as the server runs it:
//! appends and queries go on while blocks are written, every query sees each appended
//! sample exactly once, and stopping the queue in the middle of a compaction then closing
//! the shard leaves no partial block and loses or duplicates nothing after a restart.

mod common;

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use common::{read_job, run_local, small_block_options, Samples};
use glommio::sync::RwLock;
use shards::block::TMP_FOR_CREATION_SUFFIX;
use shards::compaction_queue::CompactionQueue;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const RANGE: i64 = 10 * 60 * 1000;
const STEP: i64 = 5_000;
const MINUTES: i64 = 100;
const SERIES: usize = 40;

fn options() -> ShardOptions {
    let mut o = small_block_options(RANGE, 64 * 1024);
    // Small slices, so that a compaction spans many appends and queries.
    o.compaction.series_per_step = 3;
    o.compaction.records_per_step = 2;
    o.compaction.step_budget = Duration::ZERO;
    o
}

fn key(l: &Labels) -> String {
    l.to_string()
}

fn read_all(shard: &Shard) -> Samples {
    read_job(shard, "q")
}

/// No directory of an unfinished block write is left in `dir`.
fn no_partial_block(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(TMP_FOR_CREATION_SUFFIX),
            "left behind: {name}"
        );
    }
}

/// Appends minute by minute with the queue running, checking reads every few batches;
/// with `stop_mid_compaction`, returns as soon as the 4th block is being written. Returns
/// what was appended and how many queries ran while a compaction was under way.
async fn ingest(dir: &Path, stop_mid_compaction: bool) -> (Samples, usize) {
    let (mut shard, _) = Shard::open(dir, options(), PageCacheFs, |_| {})
        .await
        .unwrap();
    shard.set_compaction_after_appends(false);
    let shard = Rc::new(RwLock::new(shard));
    let queue = CompactionQueue::spawn(shard.clone()).unwrap();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs([("__name__", "m"), ("job", "q"), ("i", &i.to_string())]).unwrap()
        })
        .collect();
    let mut refs: Vec<Option<u64>> = vec![None; SERIES];
    let mut want = Samples::new();
    let mut checked_while_compacting = 0;
    for k in 0..MINUTES * 60_000 / STEP {
        let t = k * STEP;
        let mut b = AppendBatch::default();
        let mut new = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let series = match refs[i] {
                Some(r) => SeriesKey::Ref(r),
                None => {
                    b.new_series.push(l.clone());
                    new.push(i);
                    SeriesKey::New(b.new_series.len() as u32 - 1)
                }
            };
            let v = (k * (i as i64 + 1)) as f64 * 0.25;
            b.samples.push(BatchSample { series, t, v });
            want.entry(key(l)).or_default().push((t, v.to_bits()));
        }
        {
            let mut s = shard.write().await.unwrap();
            let out = s.append(&b).await.unwrap();
            assert_eq!(out.appended as usize, b.samples.len(), "at k={k}: {out:?}");
            for (j, &i) in new.iter().enumerate() {
                refs[i] = Some(out.series_refs[j]);
            }
        }
        {
            let s = shard.read().await.unwrap();
            if s.is_compacting() && (k % 4 == 0 || stop_mid_compaction) {
                assert_eq!(read_all(&s), want, "a read during compaction, at k={k}");
                checked_while_compacting += 1;
                if stop_mid_compaction && s.compaction_stats().blocks_written >= 3 {
                    break;
                }
            }
        }
        // Scrapes leave the executor idle between them: the queue's turn.
        glommio::timer::sleep(Duration::from_micros(300)).await;
    }
    if !stop_mid_compaction {
        // On a loaded machine the low-share queue can trail the appends by several blocks:
        // let it catch up (bounded) rather than count what it managed while they ran.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let written = shard
                .read()
                .await
                .unwrap()
                .compaction_stats()
                .blocks_written;
            if written >= 5 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
    queue.stop().await;
    let Ok(shard) = Rc::try_unwrap(shard) else {
        panic!("the stopped queue still holds the shard")
    };
    let shard = shard.into_inner().unwrap();
    let stats = shard.compaction_stats().clone();
    assert_eq!(stats.failures, 0, "{stats:?}");
    if !stop_mid_compaction {
        assert!(stats.blocks_written >= 5, "{stats:?}");
        assert!(stats.checkpoints >= 1, "{stats:?}");
    }
    assert_eq!(read_all(&shard), want);
    shard.close().await.unwrap();
    no_partial_block(dir);
    (want, checked_while_compacting)
}

async fn reopen_and_check(dir: &Path, want: &Samples) {
    let (shard, report) = Shard::open(dir, options(), PageCacheFs, |_| {})
        .await
        .unwrap();
    assert!(report.failed_blocks.is_empty(), "{report:?}");
    assert!(!shard.blocks().is_empty());
    assert_eq!(&read_all(&shard), want, "after restart");
    shard.close().await.unwrap();
}

#[test]
fn appends_and_reads_go_on_during_queued_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run_local(move || async move {
        let (want, checked) = ingest(&dir, false).await;
        assert!(checked > 0, "no read ran while a compaction was under way");
        reopen_and_check(&dir, &want).await;
    });
}

#[test]
fn stopping_mid_compaction_leaves_no_partial_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run_local(move || async move {
        let (want, checked) = ingest(&dir, true).await;
        assert!(checked > 0, "the queue never started a compaction");
        reopen_and_check(&dir, &want).await;
    });
}
