//! The rule manager: loads the rule files a configuration names, runs one task per group on
//! the router executor (each waking on its group's grid), restores `for` state after a start,
//! hands due alerts to the notifier, and on reload replaces the groups while carrying over
//! the state of every rule that kept its name and labels (Prometheus's `CopyState`).
//!
//! A rule file that fails to load fails the whole (re)load and the running groups keep going.
//! It never parses PromQL or templates itself (`file`) and never sends alerts (`notifier`).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use glommio::Task;

use crate::config::Config;
use crate::flags::LogLevel;
use crate::log::log;
use crate::notifier::Notifier;

use super::file::{expand_globs, load_files};
use super::group::{wall_ms, EvalContext, Group, RuleState};
use super::router_storage::RouterStorage;

#[derive(Debug, Clone)]
pub struct RuleManagerOptions {
    pub outage_tolerance_ms: i64,
    pub grace_period_ms: i64,
    pub resend_delay_ms: i64,
    pub external_url: String,
}

pub struct RuleManager {
    storage: Rc<RouterStorage>,
    opts: RuleManagerOptions,
    notifier: Rc<Notifier>,
    groups: RefCell<Vec<Rc<Group>>>,
    tasks: RefCell<Vec<Task<()>>>,
    ctx: RefCell<EvalContext>,
    /// `for` state is restored only for the groups of the first load after start.
    started: Cell<bool>,
    /// Groups reloads removed, waiting to write their staleness markers (a finished task
    /// stays until shutdown: one small handle per removed group).
    cleanups: RefCell<Vec<Task<()>>>,
}

impl RuleManager {
    pub fn new(
        storage: Rc<RouterStorage>,
        opts: RuleManagerOptions,
        notifier: Rc<Notifier>,
    ) -> Rc<RuleManager> {
        Rc::new(RuleManager {
            storage,
            opts,
            notifier,
            groups: RefCell::new(Vec::new()),
            tasks: RefCell::new(Vec::new()),
            ctx: RefCell::new(EvalContext::default()),
            started: Cell::new(false),
            cleanups: RefCell::new(Vec::new()),
        })
    }

    /// The running groups, in file and then definition order.
    pub fn groups(&self) -> Vec<Rc<Group>> {
        self.groups.borrow().clone()
    }

    /// Loads the configuration's rule files and (re)starts the groups; on error nothing
    /// changes and the error is returned.
    pub fn apply(self: &Rc<Self>, config: &Config, config_dir: &Path) -> Result<(), String> {
        let files = expand_globs(config_dir, &config.rule_files).map_err(|e| e.to_string())?;
        let defs = load_files(&files).map_err(|e| e.to_string())?;
        let interval = config.global.evaluation_interval.as_millis() as i64;
        let offset = config.global.rule_query_offset.as_millis() as i64;
        let old = self.groups.borrow().clone();
        let mut used: Vec<Vec<bool>> = old.iter().map(|g| vec![false; g.rules.len()]).collect();
        let mut groups = Vec::with_capacity(defs.len());
        for def in defs {
            let g = Group::new(def, interval, offset);
            if let Some(oi) = old.iter().position(|o| o.key() == g.key()) {
                for cell in &g.rules {
                    let mut st = cell.borrow_mut();
                    let found =
                        old[oi].rules.iter().enumerate().position(|(i, r)| {
                            !used[oi][i] && r.borrow().def.same_identity(&st.def)
                        });
                    if let Some(i) = found {
                        used[oi][i] = true;
                        let prev = old[oi].rules[i].borrow();
                        *st = RuleState {
                            def: st.def.clone(),
                            ..prev.clone()
                        };
                    }
                }
                g.last_eval.set(old[oi].last_eval.get());
                // Rules that are gone (or unmatched duplicates): their series go stale at
                // the group's next evaluation, as Prometheus's `CopyState` arranges.
                let mut stale = old[oi].stale_series.borrow().clone();
                for (i, r) in old[oi].rules.iter().enumerate() {
                    if !used[oi][i] {
                        stale.extend(r.borrow().prev_series.iter().cloned());
                    }
                }
                *g.stale_series.borrow_mut() = stale;
            }
            groups.push(Rc::new(g));
        }
        for g in &old {
            g.stopped.set(true);
        }
        let removed: Vec<Rc<Group>> = old
            .iter()
            .filter(|o| !groups.iter().any(|g| g.key() == o.key()))
            .cloned()
            .collect();
        let mut cleanups = self.cleanups.borrow_mut();
        for g in removed {
            cleanups.push(glommio::spawn_local(mark_removed_group_stale(
                self.storage.clone(),
                g,
            )));
        }
        drop(cleanups);
        *self.ctx.borrow_mut() = EvalContext {
            external_labels: config.global.external_labels.clone(),
            external_url: self.opts.external_url.clone(),
            resend_delay_ms: self.opts.resend_delay_ms,
        };
        *self.storage.engine.borrow_mut() = {
            let mut e = self.storage.engine.borrow().clone();
            e.opts.default_subquery_step = interval;
            e
        };
        let restore = !self.started.replace(true);
        let tasks = groups
            .iter()
            .map(|g| glommio::spawn_local(self.clone().run_group(g.clone(), restore)))
            .collect();
        // Dropping the old tasks cancels them.
        *self.tasks.borrow_mut() = tasks;
        *self.groups.borrow_mut() = groups;
        Ok(())
    }

    /// Stops every group.
    pub fn stop_all(&self) {
        for g in self.groups.borrow().iter() {
            g.stopped.set(true);
        }
        self.tasks.borrow_mut().clear();
        // As Prometheus at shutdown: removed groups waiting to mark their series do not.
        self.cleanups.borrow_mut().clear();
    }

    async fn run_group(self: Rc<Self>, g: Rc<Group>, restore: bool) {
        let mut next = g.next_eval_after(wall_ms());
        let mut evals = 0u32;
        if !restore {
            // Groups (re)loaded after the start have nothing to restore: their alerts are
            // written from the first evaluation.
            for cell in &g.rules {
                cell.borrow_mut().alerts.restored = true;
            }
        }
        while !g.stopped.get() {
            let wait = next - wall_ms();
            if wait > 0 {
                glommio::timer::sleep(Duration::from_millis(wait as u64)).await;
            }
            if g.stopped.get() {
                return;
            }
            let ctx = self.ctx.borrow().clone();
            let sendable = g.eval(next, &*self.storage, &ctx).await;
            // As Prometheus: restore after the second evaluation, so that recording rules
            // the alerts depend on have written once since the start.
            if restore && evals == 1 {
                g.restore_for_state(
                    wall_ms(),
                    self.opts.outage_tolerance_ms,
                    self.opts.grace_period_ms,
                    &*self.storage,
                )
                .await;
            }
            evals += 1;
            if !sendable.is_empty() {
                self.notifier
                    .send(sendable, &ctx.external_labels, &ctx.external_url);
            }
            next += g.interval_ms;
            let now = wall_ms();
            if next + g.interval_ms <= now {
                let missed = (now - next) / g.interval_ms;
                log(
                    LogLevel::Warn,
                    "rules",
                    "group evaluation missed iterations",
                    &[("group", &g.def.name), ("missed", &missed)],
                );
                next += missed * g.interval_ms;
            }
        }
    }
}

/// A group a reload removed: after two of its intervals (time for a renamed rule to write
/// the same series first), its series get staleness markers stamped with the removal time,
/// as Prometheus's `markStale` does. Markers older than a sample a renamed rule wrote are
/// refused by the storage, so a taken-over series stays live.
async fn mark_removed_group_stale(storage: Rc<RouterStorage>, g: Rc<Group>) {
    use super::storage::RuleStorage;
    let removed_at = wall_ms();
    glommio::timer::sleep(Duration::from_millis(2 * g.interval_ms as u64)).await;
    let markers: Vec<_> = g
        .all_series()
        .into_iter()
        .map(|l| (l, removed_at, shards::value::stale_nan()))
        .collect();
    if markers.is_empty() {
        return;
    }
    if let Err(e) = storage.append(markers).await {
        log(
            LogLevel::Warn,
            "rules",
            "writing staleness markers of a removed group failed",
            &[("group", &g.def.name), ("err", &e)],
        );
    }
}
