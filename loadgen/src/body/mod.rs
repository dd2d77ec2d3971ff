//! A simulated target's `/metrics` body: its shape (families, label sets, value slots), the
//! template rendered once per format, and the target whose values evolve and are written
//! into the template's slots in place.
//!
//! Nothing here does I/O; the server hands these bytes to sockets.

mod churn;
mod gzip_plan;
mod render;
mod shape;
mod target;

pub use gzip_plan::GzipPlan;
pub use render::{Format, Rendering, POD_WIDTH};
pub use shape::{Family, Group, Kind, Shape, ShapeConfig, ShapeError};
pub use target::{Layout, Target};
