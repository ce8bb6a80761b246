//! Integration tests: one binary, so the appliance and its stores link once.
//! Every test starts its own appliance (see harness.rs) and runs in parallel.

mod carbon;
mod harness;
mod skeleton;
mod tidy;
mod tsdb_model;
mod whisper;
