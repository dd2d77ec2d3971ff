use super::*;
use crate::chunkenc::XorChunk;
use proptest::prelude::*;

fn small() -> Options {
    Options {
        max_file_size: 4096,
        write_buffer_size: 256,
        preallocate: true,
    }
}

fn xor(n: i64, base: i64) -> Vec<u8> {
    let mut c = XorChunk::new();
    for i in 0..n {
        c.append(base + i * 15_000, (base + i) as f64);
    }
    c.bytes().to_vec()
}

fn all(m: &ChunkDiskMapper) -> Vec<MappedChunk> {
    let mut v = Vec::new();
    m.iterate(|c| v.push(c)).unwrap();
    v
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn golden_file_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = xor(4, 1000);
    let (mut m, report) = ChunkDiskMapper::open(dir.path()).unwrap();
    assert_eq!(report, OpenReport::default());
    let r = m.write_chunk(1, 1000, 46000, Encoding::Xor, &data).unwrap();
    assert_eq!(r, (1 << 32) | 8);
    m.close().unwrap();

    let bytes = fs::read(dir.path().join("000001")).unwrap();
    let mut want = vec![0x01, 0x30, 0xbc, 0x91, 0x01, 0, 0, 0];
    let rec_start = want.len();
    want.extend_from_slice(&1u64.to_be_bytes());
    want.extend_from_slice(&1000i64.to_be_bytes());
    want.extend_from_slice(&46000i64.to_be_bytes());
    want.push(0x01);
    want.push(data.len() as u8);
    want.extend_from_slice(&data);
    let crc = crc32c::crc32c(&want[rec_start..]);
    want.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(
        bytes, want,
        "closed file is header + record, preallocation cut off"
    );
}

#[test]
fn buffered_and_flushed_reads_and_reopen_continues_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let a = xor(3, 0);
    let b = xor(120, 7);
    let ra = m.write_chunk(10, 0, 30_000, Encoding::Xor, &a).unwrap();
    assert_eq!(m.chunk(ra).unwrap(), a, "readable from the buffer");
    m.flush().unwrap();
    assert_eq!(m.chunk(ra).unwrap(), a, "readable from the mmap");
    let rb = m.write_chunk(11, 7, 1_785_007, Encoding::Xor, &b).unwrap();
    assert_eq!(m.chunk(rb).unwrap(), b);
    let rec = m.chunk_record(rb).unwrap();
    assert_eq!((rec.series_ref, rec.mint, rec.maxt), (11, 7, 1_785_007));
    let seen = all(&m);
    assert_eq!(seen.len(), 2, "iterate includes buffered records");
    assert_eq!(seen[1].chunk_ref, rb);
    assert_eq!(seen[1].num_samples, 120);
    m.sync().unwrap();
    m.close().unwrap();

    let (mut m, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!(report.files, 1);
    assert_eq!(report.records, 2);
    assert!(report.removed.is_empty() && report.corruption.is_none());
    assert_eq!(all(&m), seen);
    assert_eq!(m.chunk(ra).unwrap(), a);
    assert_eq!(m.chunk(rb).unwrap(), b);
    // A new run never appends to an old file.
    let rc = m.write_chunk(12, 1, 2, Encoding::Xor, &a).unwrap();
    assert_eq!(unpack_chunk_disk_ref(rc), (2, 8));
    drop(m);
    assert_eq!(names(dir.path()), ["000001", "000002"]);
}

#[test]
fn files_are_cut_at_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let data = xor(120, 0);
    let mut refs = Vec::new();
    for s in 1..=100u64 {
        refs.push(m.write_chunk(s, 0, 1, Encoding::Xor, &data).unwrap());
    }
    let files: Vec<u32> = m.file_numbers().collect();
    assert!(files.len() > 3, "{files:?}");
    for (i, &r) in refs.iter().enumerate() {
        let (f, off) = unpack_chunk_disk_ref(r);
        assert!(u64::from(off) + record::record_len(data.len()) as u64 <= 4096);
        assert!(files.contains(&f));
        assert_eq!(m.chunk(r).unwrap(), data, "chunk {i}");
    }
    m.close().unwrap();
    for n in names(dir.path()) {
        assert!(fs::metadata(dir.path().join(&n)).unwrap().len() <= 4096);
    }
    let (m, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!(report.records, 100);
    assert_eq!(
        all(&m).iter().map(|c| c.chunk_ref).collect::<Vec<_>>(),
        refs
    );

    let too_big = vec![0u8; 4096];
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert!(matches!(
        m.write_chunk(1, 0, 1, Encoding::Xor, &too_big),
        Err(ChunksHeadError::ChunkTooLarge { .. })
    ));
}

#[test]
fn corrupt_middle_file_removes_it_and_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let data = xor(10, 0);
    let mut refs = Vec::new();
    for f in 0..3 {
        for s in 0..3u64 {
            refs.push(
                m.write_chunk(f * 10 + s + 1, 0, 1, Encoding::Xor, &data)
                    .unwrap(),
            );
        }
        m.cut_file().unwrap();
    }
    m.close().unwrap();
    assert_eq!(names(dir.path()), ["000001", "000002", "000003"]);

    // Flip a data byte of the second record of file 2.
    let (_, off) = unpack_chunk_disk_ref(refs[4]);
    let p = dir.path().join("000002");
    let mut b = fs::read(&p).unwrap();
    b[off as usize + 30] ^= 0x40;
    fs::write(&p, &b).unwrap();

    let (mut m, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!(report.files, 1);
    assert_eq!(report.records, 3);
    let reasons: Vec<_> = report.removed.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [RemovalReason::Corrupt, RemovalReason::AfterCorrupt]
    );
    assert_eq!(report.removed[0].path, p);
    let why = report.corruption.unwrap();
    assert!(
        why.contains("checksum mismatch") && why.contains("000002"),
        "{why}"
    );
    assert_eq!(names(dir.path()), ["000001"]);
    assert_eq!(all(&m).len(), 3);
    assert!(matches!(
        m.chunk(refs[4]),
        Err(ChunksHeadError::InvalidRef { .. })
    ));
    let r = m.write_chunk(99, 0, 1, Encoding::Xor, &data).unwrap();
    assert_eq!(
        unpack_chunk_disk_ref(r).0,
        2,
        "numbering continues after the kept files"
    );
}

#[test]
fn crash_leaves_zero_tail_and_torn_last_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = xor(5, 0);
    let opts = Options {
        max_file_size: 1 << 20,
        ..small()
    };
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), opts).unwrap();
    for s in 1..=4 {
        m.write_chunk(s, 0, 1, Encoding::Xor, &data).unwrap();
    }
    m.flush().unwrap();
    // A crash: the file stays preallocated, its tail zeros.
    std::mem::forget(m);
    let p1 = dir.path().join("000001");
    assert_eq!(fs::metadata(&p1).unwrap().len(), 1 << 20);
    // And a file created but never written before the crash.
    let p2 = dir.path().join("000002");
    fs::write(&p2, vec![0u8; 4096]).unwrap();

    let (m, report) = ChunkDiskMapper::open_with(dir.path(), opts).unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(report.truncated_tails, 1);
    assert_eq!(
        report.removed,
        [RemovedFile {
            path: p2,
            reason: RemovalReason::TornLastFile
        }]
    );
    assert!(report.corruption.is_none());
    assert_eq!(all(&m).len(), 4);
    let expect_len = 8 + 4 * record::record_len(data.len()) as u64;
    assert_eq!(fs::metadata(&p1).unwrap().len(), expect_len);

    // A header too short to hold the magic, last: also torn.
    drop(m);
    fs::write(dir.path().join("000002"), [0x01, 0x30]).unwrap();
    let (_, report) = ChunkDiskMapper::open_with(dir.path(), opts).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].reason, RemovalReason::TornLastFile);
}

#[test]
fn partial_record_at_the_end_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let data = xor(5, 0);
    m.write_chunk(1, 0, 1, Encoding::Xor, &data).unwrap();
    let r2 = m.write_chunk(2, 0, 1, Encoding::Xor, &data).unwrap();
    m.close().unwrap();
    let p = dir.path().join("000001");
    let len = fs::metadata(&p).unwrap().len();
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 3).unwrap();
    let (_, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!(report.files, 0);
    assert_eq!(report.removed[0].reason, RemovalReason::Corrupt);
    let why = report.corruption.unwrap();
    assert!(
        why.contains(&format!("offset {}", unpack_chunk_disk_ref(r2).1)),
        "{why}"
    );
}

#[test]
fn gap_foreign_file_and_bad_version_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    for _ in 0..3 {
        m.write_chunk(1, 0, 1, Encoding::Xor, &xor(2, 0)).unwrap();
        m.cut_file().unwrap();
    }
    drop(m);
    fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let p2 = dir.path().join("000002");
    let saved = fs::read(&p2).unwrap();

    let mut bad = saved.clone();
    bad[4] = 2;
    fs::write(&p2, &bad).unwrap();
    assert!(matches!(
        ChunkDiskMapper::open_with(dir.path(), small()),
        Err(ChunksHeadError::UnsupportedVersion { version: 2, .. })
    ));
    bad[0] = 0x7f;
    fs::write(&p2, &bad).unwrap();
    let err = ChunkDiskMapper::open_with(dir.path(), small()).unwrap_err();
    assert!(matches!(err, ChunksHeadError::BadMagic { .. }), "{err}");

    fs::remove_file(&p2).unwrap();
    let err = ChunkDiskMapper::open_with(dir.path(), small()).unwrap_err();
    assert!(
        matches!(
            err,
            ChunksHeadError::Gap {
                before: 1,
                after: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(names(dir.path()), ["000001", "000003", "notes.txt"]);
}

#[test]
fn invalid_refs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let r = m.write_chunk(1, 0, 1, Encoding::Xor, &xor(3, 0)).unwrap();
    let (f, off) = unpack_chunk_disk_ref(r);
    for bad in [
        chunk_disk_ref(f + 1, off),
        chunk_disk_ref(f, 0),
        chunk_disk_ref(f, 3000),
        chunk_disk_ref(f, u32::MAX),
    ] {
        assert!(
            matches!(m.chunk(bad), Err(ChunksHeadError::InvalidRef { .. })),
            "{bad:#x}"
        );
    }
    m.flush().unwrap();
    for bad in [chunk_disk_ref(f, 3000), chunk_disk_ref(f, u32::MAX)] {
        assert!(
            matches!(m.chunk(bad), Err(ChunksHeadError::InvalidRef { .. })),
            "{bad:#x}"
        );
    }
    // A ref into the middle of a record: its bytes do not parse or do not check out.
    assert!(m.chunk(chunk_disk_ref(f, off + 1)).is_err());
}

#[test]
fn out_of_order_flag_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let r = m
        .write_ooo_chunk(5, 0, 1, Encoding::Xor, &xor(2, 0))
        .unwrap();
    assert!(m.chunk_record(r).unwrap().out_of_order);
    m.close().unwrap();
    let (m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let c = all(&m);
    assert_eq!((c[0].encoding, c[0].out_of_order), (Encoding::Xor, true));
}

#[test]
fn truncate_deletes_an_old_prefix_and_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let d = xor(2, 0);
    for (i, maxt) in [100, 50, 300, 200].into_iter().enumerate() {
        m.write_chunk(i as u64 + 1, 0, maxt, Encoding::Xor, &d)
            .unwrap();
        m.cut_file().unwrap();
    }
    let last = m.write_chunk(9, 0, 10, Encoding::Xor, &d).unwrap();
    assert_eq!(m.truncate(250).unwrap(), [1, 2]);
    assert_eq!(m.file_numbers().collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(
        m.chunk(last).unwrap(),
        d,
        "the current file is kept even if old"
    );
    let next = m.write_chunk(10, 0, 10, Encoding::Xor, &d).unwrap();
    assert_eq!(
        unpack_chunk_disk_ref(next).0,
        6,
        "truncation cut the current file"
    );
    m.close().unwrap();
    let (_, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!(report.files, 4);
}

#[test]
fn a_detached_truncation_releases_files_when_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    let d = xor(2, 0);
    for (i, maxt) in [100, 300].into_iter().enumerate() {
        m.write_chunk(i as u64 + 1, 0, maxt, Encoding::Xor, &d)
            .unwrap();
        m.cut_file().unwrap();
    }
    let kept = m.write_chunk(9, 0, 400, Encoding::Xor, &d).unwrap();
    let release = m.truncate_detached(250).unwrap();
    // The mapper is done with file 1 at once; the file itself goes with `complete`, and
    // chunks written meanwhile go to a new file.
    assert_eq!(m.file_numbers().collect::<Vec<_>>(), [2, 3]);
    assert!(dir.path().join("000001").exists());
    let next = m.write_chunk(10, 0, 500, Encoding::Xor, &d).unwrap();
    assert_eq!(unpack_chunk_disk_ref(next).0, 4);
    assert_eq!(
        std::thread::spawn(|| release.complete())
            .join()
            .unwrap()
            .unwrap(),
        [1]
    );
    assert!(!dir.path().join("000001").exists());
    assert_eq!(
        (m.chunk(kept).unwrap(), m.chunk(next).unwrap()),
        (&d[..], &d[..])
    );
    m.close().unwrap();
    let (m, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
    assert_eq!((report.files, report.truncated_tails), (3, 0), "{report:?}");
    assert_eq!(all(&m).len(), 3);
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        series_ref: u64,
        mint: i64,
        maxt: i64,
        data: Vec<u8>,
    },
    Flush,
    Cut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u64.., any::<i64>(), any::<i64>(), proptest::collection::vec(any::<u8>(), 2..600))
            .prop_map(|(series_ref, mint, maxt, data)| Op::Write { series_ref, mint, maxt, data }),
        1 => Just(Op::Flush),
        1 => Just(Op::Cut),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_chunks_survive_reopen(ops in proptest::collection::vec(op(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut m, _) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
        let mut written = Vec::new();
        for op in &ops {
            match op {
                Op::Write { series_ref, mint, maxt, data } => {
                    let r = m.write_chunk(*series_ref, *mint, *maxt, Encoding::Xor, data).unwrap();
                    prop_assert_eq!(m.chunk(r).unwrap(), &data[..]);
                    written.push((r, *series_ref, *mint, *maxt, data.clone()));
                }
                Op::Flush => m.flush().unwrap(),
                Op::Cut => m.cut_file().unwrap(),
            }
        }
        let check = |m: &ChunkDiskMapper| -> Result<(), TestCaseError> {
            let seen = all(m);
            prop_assert_eq!(seen.len(), written.len());
            for (c, (r, s, mint, maxt, data)) in seen.iter().zip(&written) {
                prop_assert_eq!((c.chunk_ref, c.series_ref, c.mint, c.maxt), (*r, *s, *mint, *maxt));
                prop_assert_eq!(c.num_samples, u16::from_be_bytes([data[0], data[1]]));
                prop_assert_eq!(m.chunk(*r).unwrap(), &data[..]);
            }
            Ok(())
        };
        check(&m)?;
        m.close().unwrap();
        let (m, report) = ChunkDiskMapper::open_with(dir.path(), small()).unwrap();
        prop_assert!(report.removed.is_empty() && report.corruption.is_none(), "{:?}", report);
        prop_assert_eq!(report.records, written.len());
        check(&m)?;
    }
}
