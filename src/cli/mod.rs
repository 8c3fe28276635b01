//! Parts of the command line kept out of main.rs: the `--help` examples and what
//! `-v/--verbose` prints.

pub mod examples;
pub mod verbose;
