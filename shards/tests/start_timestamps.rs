//! Start timestamps through a real shard: appended with the head's start-timestamp storage
//! on, they are logged in samples V2 WAL records, kept in XOR2 chunks (open and cut into
//! chunks_head), and read back exactly after a restart, whether the head is rebuilt from the
//! WAL and chunks_head or from a snapshot. With the storage off (the default) the same
//! batches write only samples V1 records, as Prometheus 2.x reads them, and no start
//! timestamp is kept.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::run_local;
use shards::chunkenc::Encoding;
use shards::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::checkpoint::Checkpointer;
use shards::wal::record::{self, SAMPLES, SAMPLES_V2};
use shards::wal::{checkpoint_name, list_segments, PageCacheFs, WalReader};

const STEP: i64 = 15_000;
/// Enough samples at 15 s for the head to cut chunks into chunks_head.
const SAMPLES_PER_SERIES: i64 = 400;

/// (labels, [(t, v, st)]) per series.
type Contents = BTreeMap<String, Vec<(i64, u64, i64)>>;

fn options(store: bool, snapshot: bool) -> ShardOptions {
    ShardOptions {
        head: HeadOptions {
            store_start_timestamps: store,
            ..HeadOptions::default()
        },
        snapshot_on_shutdown: snapshot,
        ..Default::default()
    }
}

/// A cumulative counter restarting every 100 samples (its start timestamp moves), a delta
/// series whose start is the previous sample's time, and a series without start timestamps.
fn start_of(series: usize, k: i64, t: i64) -> i64 {
    match series {
        0 => (k / 100) * 100 * STEP + 1,
        1 => t - STEP,
        _ => 0,
    }
}

async fn write(dir: &Path, opts: ShardOptions) -> Contents {
    let (mut shard, _) = Shard::open(dir, opts, PageCacheFs, |_| {}).await.unwrap();
    let series: Vec<Labels> = ["cumulative", "delta", "plain"]
        .iter()
        .map(|n| Labels::from_pairs([("__name__", "st_test"), ("kind", n)]).unwrap())
        .collect();
    let mut refs: Vec<Option<u64>> = vec![None; series.len()];
    let mut want = Contents::new();
    for k in 0..SAMPLES_PER_SERIES {
        let t = 1_000_000 + k * STEP;
        let mut b = AppendBatch::default();
        for (i, l) in series.iter().enumerate() {
            let key = match refs[i] {
                Some(r) => SeriesKey::Ref(r),
                None => {
                    b.new_series.push(l.clone());
                    SeriesKey::New(b.new_series.len() as u32 - 1)
                }
            };
            let v = if k == 250 && i == 2 {
                f64::from_bits(0x7ff0_0000_0000_0002)
            } else {
                (k % 100) as f64 * 1.5
            };
            let st = start_of(i, k, t);
            b.samples.push(BatchSample { series: key, t, v });
            b.start_timestamps.push(st);
            want.entry(l.to_string())
                .or_default()
                .push((t, v.to_bits(), st));
        }
        let out = shard.append(&b).await.unwrap();
        for (j, r) in out.series_refs.iter().enumerate() {
            let i = series.iter().position(|l| *l == b.new_series[j]).unwrap();
            refs[i] = Some(*r);
        }
        assert_eq!(out.appended, 3);
    }
    shard.close().await.unwrap();
    want
}

fn contents(head: &Head) -> Contents {
    head.series_refs()
        .map(|r| {
            let l = head.series_labels(r).unwrap();
            let s = head
                .samples(r, i64::MIN, i64::MAX)
                .unwrap()
                .collect_checked_with_starts()
                .unwrap();
            (
                l.to_string(),
                s.into_iter()
                    .map(|(t, v, st)| (t, v.to_bits(), st))
                    .collect(),
            )
        })
        .collect()
}

/// Head chunk encodings per series: the cut chunks' (from chunks_head) and the open one's.
fn encodings(head: &Head) -> BTreeMap<String, Vec<Encoding>> {
    head.series_refs()
        .map(|r| {
            let l = head.series_labels(r).unwrap();
            let mut views = Vec::new();
            head.chunks_overlapping(r, i64::MIN, i64::MAX, &mut views)
                .unwrap();
            (l.to_string(), views.iter().map(|v| v.encoding).collect())
        })
        .collect()
}

/// Type bytes of every record in the shard's WAL.
fn record_types(dir: &Path) -> Vec<u8> {
    let mut r = WalReader::open(&dir.join("wal")).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.extend(record::record_type(rec));
    }
    out
}

async fn reopen(dir: &Path, opts: ShardOptions) -> (Contents, BTreeMap<String, Vec<Encoding>>) {
    let (shard, _) = Shard::open(dir, opts, PageCacheFs, |_| {}).await.unwrap();
    let got = (contents(shard.head()), encodings(shard.head()));
    shard.close().await.unwrap();
    got
}

#[test]
fn stored_start_timestamps_survive_restarts_from_wal_and_snapshot() {
    for snapshot in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shard-000");
        let d = dir.clone();
        let want = run_local(move || async move { write(&d, options(true, snapshot)).await });

        let types = record_types(&dir);
        assert!(types.contains(&SAMPLES_V2), "{types:?}");
        assert!(
            !types.contains(&SAMPLES),
            "every batch has start timestamps"
        );

        let d = dir.clone();
        let (got, enc) = run_local(move || async move { reopen(&d, options(true, false)).await });
        assert_eq!(got, want, "snapshot {snapshot}");
        let of = |kind: &str| {
            enc.iter()
                .find(|(l, _)| l.contains(kind))
                .map(|(_, e)| e.clone())
                .unwrap()
        };
        let cumulative = of("cumulative");
        assert!(cumulative.len() >= 3, "chunks were cut: {enc:?}");
        assert!(cumulative.iter().all(|&e| e == Encoding::Xor2), "{enc:?}");
        let plain = of("plain");
        assert!(plain.iter().all(|&e| e == Encoding::Xor), "{enc:?}");
    }
}

#[test]
fn without_start_timestamp_storage_the_wal_and_chunks_stay_2x_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-000");
    let d = dir.clone();
    let want = run_local(move || async move { write(&d, options(false, false)).await });

    let types = record_types(&dir);
    assert!(types.contains(&SAMPLES), "{types:?}");
    assert!(!types.contains(&SAMPLES_V2), "{types:?}");

    let d = dir.clone();
    let (got, enc) = run_local(move || async move { reopen(&d, options(false, false)).await });
    let dropped: Contents = want
        .into_iter()
        .map(|(l, s)| (l, s.into_iter().map(|(t, v, _)| (t, v, 0)).collect()))
        .collect();
    assert_eq!(got, dropped);
    assert!(
        enc.values().flatten().all(|&e| e == Encoding::Xor),
        "{enc:?}"
    );
}

/// A checkpoint of segments holding samples V2 records keeps them V2, start timestamps and
/// all, for the samples at or after its cut.
#[test]
fn checkpoints_keep_samples_v2_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-000");
    let d = dir.clone();
    let want = run_local(move || async move { write(&d, options(true, false)).await });
    let wal = dir.join("wal");
    let segments = list_segments(&wal).unwrap();
    let (first, last) = (segments[0].index, segments[segments.len() - 1].index);
    let mint = 1_000_000 + 200 * STEP;
    let w = wal.clone();
    run_local(move || async move {
        let mut c = Checkpointer::start(PageCacheFs, &w, first, last, mint)
            .await
            .unwrap();
        while !c.step(|_| true, 1000).await.unwrap() {}
        c.finish().await.unwrap();
    });
    let mut r = WalReader::open(&wal.join(checkpoint_name(last))).unwrap();
    let mut types = Vec::new();
    let mut samples = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        types.extend(record::record_type(rec));
        if matches!(record::record_type(rec), Some(SAMPLES | SAMPLES_V2)) {
            record::decode_any_samples(rec, &mut samples).unwrap();
        }
    }
    assert!(
        types.contains(&SAMPLES_V2) && !types.contains(&SAMPLES),
        "{types:?}"
    );
    let mut got: Vec<(i64, u64, i64)> =
        samples.iter().map(|s| (s.t, s.v.to_bits(), s.st)).collect();
    got.sort_unstable();
    let mut kept: Vec<(i64, u64, i64)> = want
        .values()
        .flatten()
        .copied()
        .filter(|s| s.0 >= mint)
        .collect();
    kept.sort_unstable();
    assert_eq!(got, kept);
}
