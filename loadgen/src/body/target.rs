//! One simulated target: its values, how they evolve with time, and its bodies, whose value
//! and `pod` slots are rewritten in place.
//!
//! A scrape costs one pass over the values (a few integer operations each) and one pass
//! writing digits into slots; nothing is re-rendered and nothing is allocated, except the
//! first time a format is asked for (its template is copied then). Values are a function of
//! elapsed time, never of the number of scrapes, so several servers scraping one target see
//! one consistent, believable series. This type knows nothing of sockets.

use std::sync::Arc;

use super::churn::{pod_value, Churn};
use super::gzip_plan::GzipPlan;
use super::render::{Format, Rendering, POD_WIDTH};
use super::shape::{Kind, Shape, ShapeConfig, ShapeError, BUCKETS, BUCKET_BOUNDS, QUANTILES};
use crate::rng::Rng;
use crate::slot::{COUNT, GAUGE, QUANTILE, SECONDS_SUM};

/// Mean time between spontaneous counter resets of one group (a restarted worker).
const RESET_MEAN_SECS: f64 = 6.0 * 3600.0;

/// Slot of `+Inf`, `_sum` and `_count` inside a histogram group; `_sum` and `_count` inside
/// a summary group.
const HIST_INF: usize = BUCKETS.len();
const HIST_SUM: usize = BUCKETS.len() + 1;
const HIST_COUNT: usize = BUCKETS.len() + 2;
const SUMMARY_SUM: usize = QUANTILES.len();
const SUMMARY_COUNT: usize = QUANTILES.len() + 1;

/// A log-normal latency distribution (σ = 1) a histogram or summary group draws from.
#[derive(Debug, Clone)]
struct Profile {
    /// Share of observations at or below each finite bucket bound.
    cdf: [f64; BUCKETS.len()],
    mean: f64,
    quantiles: [f64; QUANTILES.len()],
}

impl Profile {
    fn new(median: f64) -> Profile {
        // The logistic curve with slope 1.702 stays within 1% of the normal CDF.
        let cdf = BUCKET_BOUNDS.map(|le| 1.0 / (1.0 + (-1.702 * (le / median).ln()).exp()));
        Profile {
            cdf,
            mean: median * 0.5f64.exp(),
            quantiles: [0.0, 1.2816, 2.3263].map(|z| median * f64::exp(z)),
        }
    }
}

/// Everything targets share: the shape, both templates and the latency profiles.
#[derive(Debug)]
pub struct Layout {
    pub shape: Shape,
    pub text: Rendering,
    pub openmetrics: Rendering,
    profiles: [Profile; 4],
}

impl Layout {
    pub fn new(config: ShapeConfig) -> Result<Arc<Layout>, ShapeError> {
        let shape = Shape::new(config)?;
        Ok(Arc::new(Layout {
            text: Rendering::new(&shape, Format::Text),
            openmetrics: Rendering::new(&shape, Format::OpenMetrics),
            shape,
            profiles: [0.01, 0.05, 0.2, 1.0].map(Profile::new),
        }))
    }

    pub fn rendering(&self, format: Format) -> &Rendering {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }

    /// The gzip plan of a format's bodies, fitted to `sample` (a body in that format): the
    /// value slots change, each on its own, and the `pod` slots, the same for every line of
    /// a group.
    pub fn gzip_plan(&self, format: Format, sample: &[u8], level: u32) -> GzipPlan {
        let r = self.rendering(format);
        let slots = self.shape.slots.len() as u32;
        let values = r
            .value_at
            .iter()
            .zip(&self.shape.slots)
            .zip(0..)
            .map(|((&at, f), i)| (at as usize, usize::from(f.width), i));
        let pods = self.shape.groups.iter().flat_map(|g| {
            let class = slots + g.first_slot as u32;
            g.slots()
                .map(move |i| (r.pod_at[i] as usize, POD_WIDTH, class))
        });
        GzipPlan::new(sample, values.chain(pods), level)
    }
}

#[derive(Debug, Clone, Copy)]
struct GroupState {
    /// Counters: increments a second. Gauges: the level they wander around (may be
    /// negative). Histograms and summaries: observations a second.
    rate: f64,
    profile: u8,
    generation: u32,
}

#[derive(Debug)]
struct Body {
    bytes: Vec<u8>,
    /// The value epoch last written into `bytes`.
    epoch: u64,
}

#[derive(Debug)]
pub struct Target {
    layout: Arc<Layout>,
    seed: u64,
    values: Vec<i64>,
    groups: Vec<GroupState>,
    /// Indexed by `Format as usize`; a format nobody asked for costs nothing.
    bodies: [Option<Body>; 2],
    rng: Rng,
    churn: Churn,
    /// Bumped by every change of values; bodies compare it to skip rewriting.
    epoch: u64,
}

impl Target {
    /// A target that looks as if it had been running for a while (between an hour and two
    /// days): counters are not all zero on the first scrape.
    pub fn new(layout: Arc<Layout>, seed: u64, churn_per_minute: f64) -> Target {
        let mut rng = Rng::new(seed);
        let groups = layout
            .shape
            .groups
            .iter()
            .map(|g| {
                let rate = match g.kind {
                    Kind::Counter => rng.log_uniform(0.01, 1000.0),
                    Kind::Gauge if rng.unit() < 0.125 => -rng.log_uniform(1.0, 1000.0),
                    Kind::Gauge => rng.log_uniform(1.0, 1e6),
                    Kind::Histogram | Kind::Summary => rng.log_uniform(0.1, 100.0),
                };
                GroupState {
                    rate,
                    profile: (rng.next_u64() % 4) as u8,
                    generation: 0,
                }
            })
            .collect();
        let mut t = Target {
            values: vec![0; layout.shape.slots.len()],
            layout,
            seed,
            groups,
            bodies: [None, None],
            rng,
            churn: Churn::new(churn_per_minute),
            epoch: 0,
        };
        for g in 0..t.groups.len() {
            t.restart_group(g);
            let uptime = t.rng.log_uniform(3600.0, 2.0 * 86400.0);
            t.evolve(g, uptime, false);
        }
        t
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Moves simulated time on by `dt` seconds: counters grow, gauges wander, histograms
    /// and summaries observe, a few counters reset and churn replaces label sets.
    pub fn advance(&mut self, dt: f64) {
        if dt.is_nan() || dt <= 0.0 {
            return;
        }
        self.epoch += 1;
        for g in 0..self.groups.len() {
            self.evolve(g, dt, true);
        }
        self.churn.tick(dt, self.values.len());
        while let Some(g) = self.churn.next_due(&self.layout.shape.groups) {
            self.replace_group(g);
        }
    }

    /// The body in `format` with the current values. Writes only the value slots, and only
    /// when values changed since this format was last served.
    pub fn body(&mut self, format: Format) -> &[u8] {
        let layout = &*self.layout;
        let rendering = layout.rendering(format);
        let body = self.bodies[format as usize].get_or_insert_with(|| {
            let mut bytes = rendering.bytes.clone();
            for (g, state) in layout.shape.groups.iter().zip(&self.groups) {
                let pod = pod_value(self.seed, g.first_slot, state.generation);
                for slot in g.slots() {
                    write_pod(&mut bytes, rendering.pod_at[slot], &pod);
                }
            }
            Body {
                bytes,
                epoch: u64::MAX,
            }
        });
        if body.epoch != self.epoch {
            let formats = &layout.shape.slots;
            for ((&at, &v), f) in rendering.value_at.iter().zip(&self.values).zip(formats) {
                let at = at as usize;
                f.write(&mut body.bytes[at..at + usize::from(f.width)], v);
            }
            body.epoch = self.epoch;
        }
        &body.bytes
    }

    /// Generation of a group's label set: how many times churn has replaced it.
    pub fn generation(&self, group: usize) -> u32 {
        self.groups[group].generation
    }

    /// Replaces a group by a new series: a new `pod` value and values starting afresh.
    fn replace_group(&mut self, g: usize) {
        self.groups[g].generation = self.groups[g].generation.wrapping_add(1);
        self.restart_group(g);
        let group = self.layout.shape.groups[g];
        let pod = pod_value(self.seed, group.first_slot, self.groups[g].generation);
        for (format, body) in self.bodies.iter_mut().enumerate() {
            let Some(body) = body else { continue };
            let rendering = match format {
                0 => &self.layout.text,
                _ => &self.layout.openmetrics,
            };
            for slot in group.slots() {
                write_pod(&mut body.bytes, rendering.pod_at[slot], &pod);
            }
        }
    }

    /// Values of a freshly started series: zero counts, gauges at their level.
    fn restart_group(&mut self, g: usize) {
        let group = self.layout.shape.groups[g];
        let slots = group.slots();
        self.values[slots.clone()].fill(0);
        if group.kind == Kind::Gauge {
            self.values[slots.start] = scaled(self.groups[g].rate, GAUGE.scale());
        }
    }

    fn evolve(&mut self, g: usize, dt: f64, may_reset: bool) {
        let group = self.layout.shape.groups[g];
        let state = self.groups[g];
        let s = group.first_slot;
        let rng = &mut self.rng;
        if may_reset && group.kind != Kind::Gauge && rng.unit() < dt / RESET_MEAN_SECS {
            self.values[group.slots()].fill(0);
            return;
        }
        let v = &mut self.values;
        match group.kind {
            Kind::Counter => {
                let inc = rng.jittered(state.rate * dt);
                let next = v[s] + inc;
                // A counter past its slot wraps like a restarted process's would.
                v[s] = if next > COUNT.max() {
                    inc.min(COUNT.max())
                } else {
                    next
                };
            }
            Kind::Gauge => {
                let scale = GAUGE.scale();
                let level = v[s] as f64 / scale;
                let pull = (dt / 60.0).min(1.0) * 0.5;
                let noise =
                    (rng.unit() - 0.5) * 0.1 * state.rate.abs() * (dt.min(60.0) / 10.0).sqrt();
                let next = level + (state.rate - level) * pull + noise;
                v[s] = scaled(next, scale).clamp(GAUGE.min(), GAUGE.max());
            }
            Kind::Histogram => {
                let profile = &self.layout.profiles[usize::from(state.profile)];
                let n = rng.jittered(state.rate * dt);
                if n == 0 {
                    return;
                }
                let nf = n as f64;
                // floor(n * cdf) never decreases along the buckets and never exceeds n, so
                // the buckets stay cumulative and below `+Inf`.
                for (b, cdf) in profile.cdf.iter().enumerate() {
                    v[s + b] += (nf * cdf).floor() as i64;
                }
                v[s + HIST_INF] += n;
                let spent = nf * profile.mean * (0.8 + 0.4 * rng.unit());
                v[s + HIST_SUM] += scaled(spent, SECONDS_SUM.scale());
                v[s + HIST_COUNT] += n;
                if v[s + HIST_COUNT] > COUNT.max() || v[s + HIST_SUM] > SECONDS_SUM.max() {
                    v[group.slots()].fill(0);
                }
            }
            Kind::Summary => {
                let profile = &self.layout.profiles[usize::from(state.profile)];
                // ±10% jitter keeps the quantiles ordered: they are at least 3.6x apart.
                for (j, q) in profile.quantiles.iter().enumerate() {
                    let jitter = 0.9 + 0.2 * rng.unit();
                    v[s + j] = scaled(q * jitter, QUANTILE.scale()).min(QUANTILE.max());
                }
                let n = rng.jittered(state.rate * dt);
                let spent = n as f64 * profile.mean * (0.8 + 0.4 * rng.unit());
                v[s + SUMMARY_SUM] += scaled(spent, SECONDS_SUM.scale());
                v[s + SUMMARY_COUNT] += n;
                if v[s + SUMMARY_COUNT] > COUNT.max() || v[s + SUMMARY_SUM] > SECONDS_SUM.max() {
                    v[group.slots()].fill(0);
                }
            }
        }
    }
}

fn scaled(x: f64, scale: f64) -> i64 {
    // `as` saturates, so a runaway value clamps instead of wrapping.
    (x * scale).round() as i64
}

fn write_pod(bytes: &mut [u8], at: u32, pod: &[u8; POD_WIDTH]) {
    let at = at as usize;
    bytes[at..at + POD_WIDTH].copy_from_slice(pod);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, parse_sample};
    use proptest::prelude::*;

    fn layout(series: usize, labels: usize, label_values: usize) -> Arc<Layout> {
        Layout::new(ShapeConfig {
            series,
            labels,
            label_values,
        })
        .unwrap()
    }

    /// (series name + labels, value) of every sample line.
    fn samples(body: &[u8]) -> Vec<(String, f64)> {
        std::str::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let s = parse_sample(l).unwrap();
                let (series, _) = l.rsplit_once(' ').unwrap();
                (series.to_string(), s.value)
            })
            .collect()
    }

    #[test]
    fn first_body_is_valid_and_has_history() {
        let mut t = Target::new(layout(1000, 2, 4), 1, 0.0);
        let checked = check(t.body(Format::Text), Format::Text).unwrap();
        assert_eq!(checked.samples, 1000);
        let nonzero = samples(t.body(Format::Text))
            .iter()
            .filter(|(_, v)| *v != 0.0)
            .count();
        assert!(nonzero > 900, "{nonzero}");
        let om = check(t.body(Format::OpenMetrics), Format::OpenMetrics).unwrap();
        assert_eq!(om.samples, 1000);
    }

    #[test]
    fn body_length_never_changes() {
        let mut t = Target::new(layout(400, 3, 3), 2, 600.0);
        let len = t.body(Format::Text).len();
        for _ in 0..50 {
            t.advance(17.0);
            assert_eq!(t.body(Format::Text).len(), len);
        }
    }

    #[test]
    fn counters_grow_between_scrapes() {
        let mut t = Target::new(layout(200, 1, 4), 3, 0.0);
        let before = samples(t.body(Format::Text));
        t.advance(10.0);
        let after = samples(t.body(Format::Text));
        let mut grew = 0;
        for ((name, a), (name2, b)) in before.iter().zip(&after) {
            assert_eq!(name, name2, "no churn asked");
            if name.contains("_total{") && b > a {
                grew += 1;
            }
        }
        assert!(grew > 5, "{grew}");
    }

    #[test]
    fn churn_replaces_series_at_the_asked_rate() {
        let lay = layout(1001, 2, 4);
        let mut t = Target::new(lay.clone(), 4, 100.0);
        let names = |t: &mut Target| -> std::collections::HashSet<String> {
            samples(t.body(Format::Text))
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        let start = names(&mut t);
        for _ in 0..60 {
            t.advance(1.0);
        }
        let end = names(&mut t);
        let replaced = start.difference(&end).count();
        // One minute at 100 series a minute, less the group waiting for more credit.
        assert!((86..=100).contains(&replaced), "{replaced}");
        let bumped: u32 = (0..lay.shape.groups.len()).map(|g| t.generation(g)).sum();
        assert!(bumped > 0);
    }

    #[test]
    fn text_and_openmetrics_carry_the_same_samples() {
        let mut t = Target::new(layout(300, 2, 3), 5, 60.0);
        t.advance(30.0);
        let text = samples(t.body(Format::Text));
        t.advance(30.0);
        // The OpenMetrics body is made after churn already happened; it must agree.
        let om = samples(t.body(Format::OpenMetrics));
        let text_now = samples(t.body(Format::Text));
        assert_eq!(om, text_now);
        assert_ne!(text, text_now);
    }

    #[test]
    fn planned_gzip_of_every_version_is_the_body() {
        use flate2::read::GzDecoder;
        use std::io::Read;
        let lay = layout(1000, 2, 4);
        let mut t = Target::new(lay.clone(), 6, 3000.0);
        for format in [Format::Text, Format::OpenMetrics] {
            let plan = lay.gzip_plan(format, t.body(format), 1);
            let mut out = Vec::new();
            for step in 0..30 {
                t.advance(if step % 7 == 0 { 3600.0 } else { 1.0 });
                out.clear();
                plan.encode(t.body(format), &mut out);
                let mut back = Vec::new();
                GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, t.body(format));
                // About a fast real compressor's ratio (libdeflate level 1: 1/8.8).
                assert!(
                    out.len() * 6 < back.len(),
                    "{} of {}",
                    out.len(),
                    back.len()
                );
            }
        }
        assert!((0..lay.shape.groups.len()).any(|g| t.generation(g) > 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_updated_body_is_valid(
            series in 1usize..600,
            labels in 0usize..4,
            label_values in 1usize..6,
            churn in prop_oneof![Just(0.0), 1.0f64..5000.0],
            seed in any::<u64>(),
            steps in proptest::collection::vec(
                prop_oneof![0.001f64..1.0, 1.0f64..120.0, 1e5f64..1e7], 1..8),
            openmetrics_first in any::<bool>(),
        ) {
            let mut t = Target::new(layout(series, labels, label_values), seed, churn);
            let order = if openmetrics_first {
                [Format::OpenMetrics, Format::Text]
            } else {
                [Format::Text, Format::OpenMetrics]
            };
            for dt in steps {
                t.advance(dt);
                for format in order {
                    let checked = check(t.body(format), format);
                    prop_assert!(checked.is_ok(), "{:?}: {:?}", format, checked);
                    prop_assert_eq!(checked.unwrap().samples, series);
                }
                prop_assert_eq!(
                    samples(t.body(Format::Text)),
                    samples(t.body(Format::OpenMetrics))
                );
            }
        }
    }
}
