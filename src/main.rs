//! The promcore server binary.
fn main() {}
