//! Recording and alerting rules: rule files (`file`), their templates (`template`,
//! `go_format`), a group's evaluation (`group`, with the alerting state machine in
//! `alerting`), the data they read and write (`storage`, `router_storage`), the manager that
//! runs the groups on the router executor (`manager`), and the command-line checks and unit
//! tests (`check`, `unit_test`).
//!
//! Nothing here sends notifications (that is `crate::notifier`) or serves HTTP.

pub mod alerting;
pub mod check;
pub mod file;
pub mod go_format;
pub mod group;
pub mod manager;
pub mod router_storage;
pub mod storage;
pub mod template;
pub mod unit_test;
