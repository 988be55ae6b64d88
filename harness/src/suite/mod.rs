//! Suites: files of cases with expectations, and their runners.

pub mod vectors;
