//! The per-scrape cost of a simulated target with 1,000 series: advancing its values and
//! writing them into the body's slots, and gzipping the body for scrapers that ask (by the
//! template's plan, and with the compressor loadgen used before for comparison).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::{Compress, Compression, FlushCompress};
use loadgen::body::{Format, Layout, ShapeConfig, Target};

fn scrape(c: &mut Criterion) {
    let layout = Layout::new(ShapeConfig {
        series: 1000,
        labels: 2,
        label_values: 4,
    })
    .unwrap();
    let mut target = Target::new(layout.clone(), 1, 60.0);
    let plan = layout.gzip_plan(Format::Text, target.body(Format::Text), 1);
    let mut g = c.benchmark_group("scrape_1000_series");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("advance_and_write_text", |b| {
        b.iter(|| {
            target.advance(10.0);
            black_box(target.body(Format::Text).len())
        })
    });
    g.bench_function("advance_and_write_openmetrics", |b| {
        b.iter(|| {
            target.advance(10.0);
            black_box(target.body(Format::OpenMetrics).len())
        })
    });
    let mut out = Vec::new();
    g.bench_function("advance_write_and_gzip_text", |b| {
        b.iter(|| {
            target.advance(10.0);
            out.clear();
            plan.encode(target.body(Format::Text), &mut out);
            black_box(out.len())
        })
    });
    eprintln!(
        "body {} B, planned gzip level 1: {} B",
        target.body(Format::Text).len(),
        out.len()
    );
    // The compressor loadgen used before: flate2's raw deflate, reset per body (no gzip
    // header or CRC, so slightly flattering to it).
    let mut deflate = Compress::new(Compression::new(1), false);
    g.bench_function("advance_write_and_flate2_deflate_text", |b| {
        b.iter(|| {
            target.advance(10.0);
            out.clear();
            deflate.reset();
            let body = target.body(Format::Text);
            out.reserve(body.len() + 64);
            let _ = deflate.compress_vec(body, &mut out, FlushCompress::Finish);
            black_box(out.len())
        })
    });
    eprintln!("flate2 level 1 raw deflate: {} B", out.len());

    // What a scraper pays for each stream: libdeflate's inflate, as in promcore.
    let body = target.body(Format::Text).to_vec();
    let mut planned = Vec::new();
    plan.encode(&body, &mut planned);
    let mut raw = Vec::with_capacity(body.len() + 64);
    deflate.reset();
    let _ = deflate.compress_vec(&body, &mut raw, FlushCompress::Finish);
    let mut back = vec![0u8; body.len()];
    let inflater = Inflater::new();
    g.bench_function("inflate_planned_gzip", |b| {
        b.iter(|| black_box(inflater.inflate(&planned, &mut back, true)))
    });
    g.bench_function("inflate_flate2_level1_deflate", |b| {
        b.iter(|| black_box(inflater.inflate(&raw, &mut back, false)))
    });
    g.finish();
}

/// libdeflate's decompressor, which promcore inflates scrape bodies with.
struct Inflater(*mut libdeflate_sys::libdeflate_decompressor);

impl Inflater {
    fn new() -> Inflater {
        // SAFETY: allocation only; checked for null below.
        let d = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        assert!(!d.is_null());
        Inflater(d)
    }

    /// Inflates `data` (a gzip member, or raw deflate) into `out`; returns the length.
    fn inflate(&self, data: &[u8], out: &mut [u8], gzip: bool) -> usize {
        let mut n = 0usize;
        // SAFETY: the buffers are valid for the lengths passed; `n` receives the size.
        let rc = unsafe {
            let f = if gzip {
                libdeflate_sys::libdeflate_gzip_decompress
            } else {
                libdeflate_sys::libdeflate_deflate_decompress
            };
            f(
                self.0,
                data.as_ptr().cast(),
                data.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut n,
            )
        };
        assert_eq!(rc, libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS);
        n
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0) }
    }
}

criterion_group!(benches, scrape);
criterion_main!(benches);
