//! The integration tests, as one test binary: the helpers in `common` are compiled once
//! for every module. A new test file is a module here (`mod NAME;` for `tests/it/NAME.rs`).

mod common;

mod bundle_push;
mod cli;
mod cli_docs;
mod compression;
mod corpus;
mod daemon;
mod destinations;
mod errors;
mod export;
mod faults;
mod fixtures;
mod golden;
mod history;
mod hostile;
mod hostile_registry;
mod inspect_rich;
mod interop_docker;
mod interop_matrix;
mod interop_oci_tools;
mod interop_podman;
mod interop_skopeo;
mod library;
mod limits;
mod messages;
mod metadata;
mod mirrors;
mod naming;
mod progress;
mod referrers;
mod referrers_api;
mod referrers_carry;
mod registry;
mod registry_commands;
mod registry_harness;
mod registry_to_registry;
mod select_by_id;
mod several_sources;
mod signatures;
mod stdin_spool;
mod sync;
mod tls;
