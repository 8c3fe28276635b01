//! Parts of the command line kept out of main.rs: the `--help` examples and what
//! `-v/--verbose` prints, and the shape of the progress lines.

pub mod bar_layout;
pub mod examples;
pub mod verbose;
