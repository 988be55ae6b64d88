//! Suites: files of cases with expectations, and their runners.

pub mod cases;
pub mod coverage;
pub mod expect;
pub mod expectations;
pub mod fused;
pub mod vectors;
