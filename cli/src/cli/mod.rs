//! Parts of the command line kept out of main.rs: the `--help` examples, what
//! `-v/--verbose` prints, the shape of the progress lines and the tables printed as
//! text.

pub mod bar_layout;
pub mod examples;
pub mod format;
pub mod tables;
pub mod verbose;
