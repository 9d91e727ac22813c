//! # neuroflow-router
//!
//! The tool router: tools mapped onto shards by consistent hashing, arguments validated
//! against JSON Schema, per-call deadlines, built-in tools.
