//! A head snapshot promcore did not write, holding one label set under two refs: the shard
//! opens from it all the same. The fast restore (label sets filed in the hash index at the
//! end) declines such a snapshot and the per-series restore, on a freshly opened head,
//! maps the second ref onto the first series, as a replay of such a WAL does.

mod common;

use std::path::{Path, PathBuf};

use common::run_local;
use shards::head::snapshot;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::{PageCacheFs, Wal, WalOptions, WalReader};

fn options() -> ShardOptions {
    ShardOptions {
        snapshot_on_shutdown: true,
        ..Default::default()
    }
}

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", "dup_test"), ("series", name)]).unwrap()
}

/// A shard holding `names` (refs 1, 2, ... in this order), one sample each, closed with a
/// snapshot; the snapshot's directory.
async fn write(dir: &Path, names: &[&str]) -> PathBuf {
    let (mut shard, _) = Shard::open(dir, options(), PageCacheFs, |_| {})
        .await
        .unwrap();
    let mut b = AppendBatch::default();
    for (i, n) in names.iter().enumerate() {
        b.new_series.push(labels(n));
        b.samples.push(BatchSample {
            series: SeriesKey::New(i as u32),
            t: 1_000,
            v: i as f64,
        });
    }
    assert_eq!(
        shard.append(&b).await.unwrap().appended as usize,
        names.len()
    );
    shard.close().await.unwrap();
    snapshot::last_snapshot(dir).unwrap().unwrap().0
}

fn records(dir: &Path) -> Vec<Vec<u8>> {
    let mut r = WalReader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(rec.to_vec());
    }
    out
}

#[test]
fn a_label_set_under_two_refs_is_restored_the_per_series_way() {
    run_local(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let snap_a = write(&a, &["one", "two"]).await;
        let snap_b = write(&b, &["x", "y", "one"]).await;
        // A's records, then B's ref 3 ("one" again), then A's tombstones record.
        let mut recs = records(&snap_a);
        let tombstones = recs.pop().unwrap();
        assert_eq!(tombstones[0], snapshot::TOMBSTONES_RECORD);
        let third = records(&snap_b)
            .into_iter()
            .find(|r| {
                r[0] == snapshot::SERIES_RECORD
                    && snapshot::decode_series(r).unwrap().series_ref == 3
            })
            .unwrap();
        recs.push(third);
        recs.push(tombstones);
        std::fs::remove_dir_all(&snap_a).unwrap();
        let mut w = Wal::open(PageCacheFs, &snap_a, WalOptions::default())
            .await
            .unwrap();
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        w.log(&refs).unwrap();
        w.close().await.unwrap();

        let (shard, report) = Shard::open(&a, options(), PageCacheFs, |_| {})
            .await
            .unwrap();
        assert_eq!(report.snapshot.as_deref(), Some(snap_a.as_path()));
        let head = shard.head();
        assert_eq!(head.num_series(), 2);
        assert_eq!(head.lookup(&labels("one")), Some(1));
        assert_eq!(head.lookup(&labels("two")), Some(2));
        assert!(head.series_labels(3).is_none());
        shard.close().await.unwrap();
    });
}
