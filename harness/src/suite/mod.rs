//! Suites: files of cases with expectations, and their runners.

pub mod cases;
pub mod coverage;
pub mod expectations;
pub mod vectors;
