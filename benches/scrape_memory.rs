//! The router's memory per target, counted rather than read off RSS: N targets of loadgen's
//! bodies (1,000 series each, as `loadgen bench` serves them) go through the scrape path as
//! the scrape loop drives it (`ScrapeLoop::scrape_once` and `send_batches`: batches reserved
//! for last scrape's samples, appended, the synthetic series added, the batches handed over
//! and the new series acknowledged), three scrapes each, round after round. A counting
//! allocator then gives the bytes still allocated per target, by mimalloc size class (the
//! block sizes the server's pages are cut in), and the peak of each class on the way: what
//! a class's peak has above its end is freed blocks, pages the server may keep idle.
//!
//! Deterministic: the figures depend only on the code and N, not on the machine's load.
//! `cargo bench --bench scrape_memory -- N` (default 1000). BENCHMARKS.md has the figures.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use loadgen::body::{Format as LoadgenFormat, Layout as BodyLayout, ShapeConfig, Target};
use promcore::scrape::append::{Report, ScrapeAppender, SeriesRules, ShardBatches};
use promcore::scrape::parser::Format;
use shards::head::AppendOutcome;
use shards::labels::Labels;

/// mimalloc's bins: 8..64 bytes by 8, then four per doubling.
const BINS: usize = 160;

fn bin(size: usize) -> usize {
    let w = size.div_ceil(8).max(1);
    if w <= 8 {
        return w;
    }
    let w = w - 1;
    let b = usize::BITS as usize - 1 - w.leading_zeros() as usize;
    (((b << 2) + ((w >> (b - 2)) & 3)) - 3).min(BINS - 1)
}

/// The block size of bin `bin`: the largest size that falls in it.
fn bin_size(bin_index: usize) -> usize {
    if bin_index <= 8 {
        return bin_index * 8;
    }
    let b = (bin_index + 3) >> 2;
    let w = ((4 + ((bin_index + 3) & 3)) << (b - 2)) + (1 << (b - 2));
    w * 8
}

struct Counts {
    blocks: [AtomicI64; BINS],
    peak: [AtomicI64; BINS],
}

static COUNTS: Counts = Counts {
    blocks: [const { AtomicI64::new(0) }; BINS],
    peak: [const { AtomicI64::new(0) }; BINS],
};

fn add(size: usize, n: i64) {
    let b = bin(size);
    let now = COUNTS.blocks[b].fetch_add(n, Relaxed) + n;
    COUNTS.peak[b].fetch_max(now, Relaxed);
}

/// The server's allocator, counting live blocks by size class.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        unsafe { promcore::transient_heap::ServerAllocator.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        unsafe { promcore::transient_heap::ServerAllocator.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        unsafe { promcore::transient_heap::ServerAllocator.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(layout.size(), -1);
        add(new_size, 1);
        unsafe { promcore::transient_heap::ServerAllocator.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> [(i64, i64); BINS] {
    std::array::from_fn(|b| (COUNTS.blocks[b].load(Relaxed), COUNTS.peak[b].load(Relaxed)))
}

fn reset_peaks() {
    for b in 0..BINS {
        COUNTS.peak[b].store(COUNTS.blocks[b].load(Relaxed), Relaxed);
    }
}

/// What a scrape loop keeps of a target's scrapes between them.
struct Loop {
    appender: ScrapeAppender,
    batches: ShardBatches,
    last_samples: Vec<usize>,
}

impl Loop {
    fn new(i: usize, shards: usize) -> Loop {
        let rules = SeriesRules {
            target_labels: Labels::from_pairs([
                ("instance", format!("127.0.0.1:{}", 20_000 + i).as_str()),
                ("job", "loadgen"),
            ])
            .unwrap_or_default(),
            honor_timestamps: true,
            ..Default::default()
        };
        Loop {
            appender: ScrapeAppender::new(rules),
            batches: ShardBatches::new(shards),
            last_samples: vec![0; shards],
        }
    }

    /// `ScrapeLoop::scrape_once` and `send_batches`, the shards acknowledging every new
    /// series with the next ref.
    fn scrape(&mut self, body: &[u8], t: i64, next_ref: &mut u64) {
        for (batch, &n) in self.batches.batches.iter_mut().zip(&self.last_samples) {
            batch.samples.reserve(n);
        }
        let (up, body) =
            match self
                .appender
                .append_body(body, Format::PrometheusText, t, &mut self.batches)
            {
                Ok(r) => (true, r),
                Err(e) => panic!("loadgen's body does not append: {e}"),
            };
        let report = Report {
            up,
            duration_seconds: 0.01,
            body,
        };
        self.appender.append_report(t, &report, &mut self.batches);
        let shards = self.batches.shards();
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; shards];
        for (shard, outcome) in outcomes.iter_mut().enumerate() {
            let batch = &mut self.batches.batches[shard];
            if batch.samples.is_empty() && batch.new_series.is_empty() {
                continue;
            }
            self.last_samples[shard] = batch.samples.len();
            // Handed to the shard, which frees it.
            let batch = std::mem::take(batch);
            let series_refs = batch
                .new_series
                .iter()
                .map(|_| {
                    *next_ref += 1;
                    *next_ref
                })
                .collect();
            *outcome = Some(AppendOutcome {
                series_refs,
                ..Default::default()
            });
        }
        self.appender.commit(&mut self.batches, &outcomes);
    }
}

fn main() {
    check_bins();
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let scrapes = 3;
    let shards = 2;
    let layout = BodyLayout::new(ShapeConfig {
        series: 1000,
        labels: 2,
        label_values: 4,
    })
    .unwrap_or_else(|e| panic!("loadgen's shape: {e}"));
    let mut targets: Vec<Target> = (0..n)
        .map(|i| {
            Target::new(
                layout.clone(),
                0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9),
                0.0,
            )
        })
        .collect();
    for t in &mut targets {
        t.body(LoadgenFormat::Text);
    }
    let before = snapshot();
    reset_peaks();
    let mut loops: Vec<Loop> = (0..n).map(|i| Loop::new(i, shards)).collect();
    let mut next_ref = 0;
    let mut samples = 0;
    for round in 0..scrapes {
        let t = 1_700_000_000_000 + round as i64 * 10_000;
        for (l, target) in loops.iter_mut().zip(&mut targets) {
            target.advance(10.0);
            let body = target.body(LoadgenFormat::Text);
            l.scrape(body, t, &mut next_ref);
            samples += l.last_samples.iter().sum::<usize>();
        }
    }
    let after = snapshot();
    let series = loops[0].appender.cache_len();
    println!(
        "{n} targets, {scrapes} scrapes each ({samples} samples), {series} cached series a target\n"
    );
    println!("| class (B) | blocks per target | live B per target | peak − end B per target |");
    println!("|---:|---:|---:|---:|");
    let (mut live, mut idle) = (0.0, 0.0);
    for b in 0..BINS {
        let blocks = after[b].0 - before[b].0;
        let peak = after[b].1 - before[b].0;
        if blocks == 0 && peak == 0 {
            continue;
        }
        let size = bin_size(b) as f64;
        let per = blocks as f64 / n as f64;
        let gone = (peak - blocks) as f64 * size / n as f64;
        live += per * size;
        idle += gone;
        println!(
            "| {} | {per:.2} | {:.0} | {gone:.0} |",
            bin_size(b),
            per * size
        );
    }
    println!("| all | | **{live:.0}** | {idle:.0} |");
    println!(
        "\nlive bytes per target {live:.0} ({:.1} per cached series); peak − end {idle:.0}",
        live / series as f64
    );
    drop(loops);
}

/// The bins are mimalloc's (checked on every run: `harness = false` runs no tests).
fn check_bins() {
    for (size, class) in [
        (1, 8),
        (64, 64),
        (65, 80),
        (80, 80),
        (81, 96),
        (10_256, 12_288),
        (32_160, 32_768),
        (4096, 4096),
        (4097, 5120),
    ] {
        assert_eq!(bin_size(bin(size)), class, "{size}");
    }
}
