//! Fault tests through the WAL's file seam: a shard whose segment files fail writes (disk
//! full, torn) or fsyncs (EIO) reports the failure, refuses further appends with a clear
//! error until the fault clears, loses nothing it acknowledged, and after a restart holds
//! exactly the head it had.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::run_local;
use shards::head::{AppendBatch, BatchSample, Head, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::fault::FaultFs;
use shards::wal::PageCacheFs;

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", "fault_test"), ("s", name)]).unwrap()
}

fn batch(samples: &[(&str, i64, f64)]) -> AppendBatch {
    let mut b = AppendBatch::default();
    for &(name, t, v) in samples {
        b.new_series.push(labels(name));
        let key = SeriesKey::New(b.new_series.len() as u32 - 1);
        b.samples.push(BatchSample { series: key, t, v });
    }
    b
}

fn contents(head: &Head) -> BTreeMap<String, Vec<(i64, f64)>> {
    head.series_refs()
        .map(|r| {
            let l = head.series_labels(r).unwrap();
            let s = head
                .samples(r, i64::MIN, i64::MAX)
                .unwrap()
                .collect_checked()
                .unwrap();
            (l.to_string(), s)
        })
        .collect()
}

async fn reopen(dir: &Path, snapshot: bool) -> BTreeMap<String, Vec<(i64, f64)>> {
    let opts = ShardOptions {
        snapshot_on_shutdown: snapshot,
        ..Default::default()
    };
    let (shard, _) = Shard::open(dir, opts, PageCacheFs, |_| {}).await.unwrap();
    let c = contents(shard.head());
    shard.close().await.unwrap();
    c
}

#[test]
fn failing_writes_and_fsyncs_are_reported_refused_and_lose_nothing() {
    for snapshot in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shard-000");
        run_local(move || async move {
            let (fs, faults) = FaultFs::new(PageCacheFs);
            let opts = ShardOptions {
                snapshot_on_shutdown: snapshot,
                ..Default::default()
            };
            let (mut shard, _) = Shard::open(&dir, opts, fs, |_| {}).await.unwrap();
            shard
                .append(&batch(&[("a", 1000, 1.0), ("b", 1000, 1.0)]))
                .await
                .unwrap();

            // Disk full, with half the bytes written.
            faults.fail_writes(libc::ENOSPC, true);
            let err = shard
                .append(&batch(&[("a", 2000, 2.0), ("c", 2000, 2.0)]))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("No space left"), "{err}");
            let refused = shard.append(&batch(&[("a", 3000, 3.0)])).await.unwrap_err();
            assert!(
                refused.to_string().contains("No space left"),
                "the refusal names the cause: {refused}"
            );
            assert!(shard.is_failed());
            assert_eq!(
                contents(shard.head())[&labels("a").to_string()],
                [(1000, 1.0)]
            );

            // The fault clears: the failed write goes out first, then the new batch.
            faults.heal();
            shard
                .append(&batch(&[("a", 4000, 4.0), ("c", 4000, 4.0)]))
                .await
                .unwrap();
            assert!(!shard.is_failed());

            // fsync fails: reported, appends refused until it works again.
            faults.fail_syncs(libc::EIO);
            let err = shard.sync().await.unwrap_err();
            assert!(err.to_string().contains("Input/output error"), "{err}");
            faults.heal();
            shard.append(&batch(&[("b", 5000, 5.0)])).await.unwrap();

            let before = contents(shard.head());
            let a = &before[&labels("a").to_string()];
            // Batch 2's write failed but went out on recovery; batch 3 was refused outright.
            assert_eq!(a, &[(1000, 1.0), (2000, 2.0), (4000, 4.0)]);
            shard.close().await.unwrap();
            assert!(faults.failures() >= 2);

            // The head after a restart is exactly the head that acknowledged.
            assert_eq!(reopen(&dir, snapshot).await, before);
            assert_eq!(reopen(&dir, snapshot).await, before);
        });
    }
}
