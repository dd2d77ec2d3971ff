//! The saturation search: raise the load step by step until a server falls behind, and
//! report the highest load it sustained.
//!
//! A server *falls behind* at a step when, over the measured window, it ingested less than
//! 95 % of the samples offered (targets × (series + 5 scrape series) / interval), or missed
//! or failed more than 1 % of the scrapes due (see `scrape_health`), or could not be
//! measured at all (it exited, stopped answering, or never became ready). Load grows by
//! adding targets (series per target and interval stay fixed): ×factor per step until the
//! first step it falls behind (at most `max_steps` such steps). If the first step already
//! fails, the load shrinks ÷factor until one is sustained. A factor-wide bracket says little
//! (a 2× grid bounds a ratio of two ceilings only within 4×), so the bracket between the
//! highest sustained and the lowest failed target counts is then bisected until it is
//! narrower than `resolution` of the sustained count, or one target wide, at most `refine`
//! extra steps. The search is pure: the caller passes the measurement in.

use super::scrape_health::ScrapeHealth;

/// Below this share of the offered samples a server is behind.
pub const MIN_INGESTED_SHARE: f64 = 0.95;
/// Above this share of due scrapes missed or failed a server is behind.
pub const MAX_MISSED_SHARE: f64 = 0.01;

/// The verdict of one measured window. A window without scrape health (the query failed)
/// is judged on the ingested rate alone.
pub fn falls_behind(
    ingested_per_s: f64,
    offered_per_s: f64,
    health: Option<&ScrapeHealth>,
) -> bool {
    ingested_per_s < MIN_INGESTED_SHARE * offered_per_s
        || health.is_some_and(|h| h.missed_share() > MAX_MISSED_SHARE)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    pub start_targets: usize,
    pub factor: f64,
    /// Most bisection steps once the ceiling is bracketed.
    pub refine: usize,
    /// Bisection stops once `bad - good ≤ resolution × good` (e.g. 0.05: within 5 %).
    pub resolution: f64,
    pub max_targets: usize,
    /// Most steps before the ceiling is bracketed (growing or shrinking).
    pub max_steps: usize,
}

/// Where the search stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    config: SearchConfig,
    /// Highest target count sustained so far.
    pub good: Option<usize>,
    /// Lowest target count that fell behind so far.
    pub bad: Option<usize>,
    /// Steps taken before the bracket existed.
    steps: usize,
    /// Bisection steps taken inside the bracket.
    refined: usize,
}

impl Search {
    pub fn new(config: SearchConfig) -> Search {
        Search {
            config,
            good: None,
            bad: None,
            steps: 0,
            refined: 0,
        }
    }

    /// The target count to measure next, or `None` when the search is over.
    pub fn next(&self) -> Option<usize> {
        let c = &self.config;
        if !self.bracketed() && self.steps >= c.max_steps {
            return None;
        }
        match (self.good, self.bad) {
            (None, None) => Some(c.start_targets.clamp(1, c.max_targets)),
            (Some(good), None) => {
                let up = ((good as f64 * c.factor).round() as usize).max(good + 1);
                (good < c.max_targets).then(|| up.min(c.max_targets))
            }
            (None, Some(bad)) => {
                let down = ((bad as f64 / c.factor).round() as usize).min(bad - 1);
                (bad > 1).then_some(down.max(1))
            }
            (Some(good), Some(bad)) => {
                let mid = good + (bad - good) / 2;
                (self.refined < c.refine && !self.resolved() && mid > good && mid < bad)
                    .then_some(mid)
            }
        }
    }

    fn bracketed(&self) -> bool {
        self.good.is_some() && self.bad.is_some()
    }

    /// True when the bracket is as narrow as asked: the ceiling is known to `resolution`.
    pub fn resolved(&self) -> bool {
        match (self.good, self.bad) {
            (Some(good), Some(bad)) => {
                bad <= good + 1 || (bad - good) as f64 <= self.config.resolution * good as f64
            }
            _ => false,
        }
    }

    /// Records the verdict for `targets` (the value `next` returned).
    pub fn record(&mut self, targets: usize, behind: bool) {
        if self.bracketed() {
            self.refined += 1;
        } else {
            self.steps += 1;
        }
        if behind {
            self.bad = Some(self.bad.map_or(targets, |b| b.min(targets)));
        } else {
            self.good = Some(self.good.map_or(targets, |g| g.max(targets)));
        }
    }

    /// True when the search stopped at `max_targets` without the server falling behind:
    /// its real limit is higher than measured.
    pub fn capped(&self) -> bool {
        self.bad.is_none() && self.good == Some(self.config.max_targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SearchConfig {
        SearchConfig {
            start_targets: 100,
            factor: 2.0,
            refine: 1,
            resolution: 0.0,
            max_targets: 10_000,
            max_steps: 10,
        }
    }

    /// Runs the search against a server that sustains up to `limit` targets.
    fn search(config: SearchConfig, limit: usize) -> (Search, Vec<usize>) {
        let mut s = Search::new(config);
        let mut seen = Vec::new();
        while let Some(t) = s.next() {
            seen.push(t);
            s.record(t, t > limit);
        }
        (s, seen)
    }

    #[test]
    fn doubles_then_bisects_once() {
        let (s, seen) = search(config(), 500);
        assert_eq!(seen, vec![100, 200, 400, 800, 600]);
        assert_eq!((s.good, s.bad), (Some(400), Some(600)));
        assert!(!s.capped());
    }

    #[test]
    fn halves_when_the_first_step_fails() {
        let (s, seen) = search(config(), 30);
        assert_eq!(seen, vec![100, 50, 25, 37]);
        assert_eq!((s.good, s.bad), (Some(25), Some(37)));
    }

    #[test]
    fn stops_at_the_cap_and_says_so() {
        let c = SearchConfig {
            max_targets: 300,
            ..config()
        };
        let (s, seen) = search(c, usize::MAX);
        assert_eq!(seen, vec![100, 200, 300]);
        assert!(s.capped());
    }

    #[test]
    fn never_runs_more_steps_than_allowed() {
        let c = SearchConfig {
            max_steps: 2,
            ..config()
        };
        assert_eq!(search(c, usize::MAX).1, vec![100, 200]);
        // The growth budget does not eat the bisection's: two steps bracket, then one more.
        let c = SearchConfig {
            max_steps: 2,
            refine: 1,
            ..config()
        };
        assert_eq!(search(c, 150).1, vec![100, 200, 150]);
        let (s, seen) = search(
            SearchConfig {
                refine: 0,
                ..config()
            },
            0,
        );
        // Nothing is sustained, not even one target.
        assert_eq!(seen, vec![100, 50, 25, 13, 7, 4, 2, 1]);
        assert_eq!(s.good, None);
    }

    #[test]
    fn bisects_until_the_resolution_is_reached() {
        let c = SearchConfig {
            start_targets: 400,
            refine: 10,
            resolution: 0.05,
            ..config()
        };
        // The shape of the 09:30 run: 1600 sustained, 3200 not, real ceiling 2650.
        let (s, seen) = search(c, 2650);
        // 2600–2700 is within 5 % of 2600: no ninth step.
        assert_eq!(seen, vec![400, 800, 1600, 3200, 2400, 2800, 2600, 2700]);
        assert_eq!((s.good, s.bad), (Some(2600), Some(2700)));
        assert!(s.resolved());
        assert!(s.next().is_none());
    }

    #[test]
    fn the_refine_budget_bounds_the_bisection() {
        let c = SearchConfig {
            start_targets: 400,
            refine: 2,
            resolution: 0.01,
            ..config()
        };
        let (s, seen) = search(c, 2650);
        assert_eq!(seen, vec![400, 800, 1600, 3200, 2400, 2800]);
        assert_eq!((s.good, s.bad), (Some(2400), Some(2800)));
        assert!(!s.resolved());
    }

    #[test]
    fn a_one_target_bracket_is_resolved() {
        let c = SearchConfig {
            start_targets: 2,
            refine: 10,
            resolution: 0.0,
            ..config()
        };
        let (s, seen) = search(c, 2);
        assert_eq!(seen, vec![2, 4, 3]);
        assert_eq!((s.good, s.bad), (Some(2), Some(3)));
        assert!(s.resolved());
    }

    /// Whatever the ceiling, the bracket always holds it, and the search ends within its
    /// budgets.
    #[test]
    fn the_bracket_always_holds_the_ceiling() {
        for limit in [0, 1, 7, 99, 100, 101, 555, 2650, 9_999, 20_000] {
            let c = SearchConfig {
                refine: 6,
                resolution: 0.02,
                ..config()
            };
            let (s, seen) = search(c, limit);
            assert!(seen.len() <= c.max_steps + c.refine, "{limit}: {seen:?}");
            if let Some(g) = s.good {
                assert!(g <= limit, "{limit}: {seen:?}");
            }
            if let Some(b) = s.bad {
                assert!(b > limit, "{limit}: {seen:?}");
            }
            if let (Some(g), Some(b)) = (s.good, s.bad) {
                assert!(g < b);
            }
        }
    }

    #[test]
    fn verdicts() {
        let health = |missed: u64| ScrapeHealth {
            scrapes: 1000 - missed,
            expected_scrapes: 1000,
            missed_scrapes: missed,
            failed_scrapes: 0,
            duration_p50_ms: 1.0,
            duration_p99_ms: 2.0,
            duration_max_ms: 3.0,
        };
        assert!(!falls_behind(96.0, 100.0, Some(&health(10))));
        assert!(falls_behind(94.9, 100.0, Some(&health(0))));
        assert!(falls_behind(100.0, 100.0, Some(&health(11))));
        assert!(!falls_behind(100.0, 100.0, None));
    }
}
