//! Open an image archive, list its images, and write the first one to an OCI layout,
//! through dockhand's public API only.
//!
//!     cargo run --example convert -- image.tar layout-dir

use dockhand::{create_sink, open_source, Format, ImageSource, Location, NoProgress};
use dockhand::{ReadOptions, SinkOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        return Err("usage: convert SRC DST".into());
    };
    // Read the archive's metadata (no layer data is read here).
    let source = open_source(&Location::parse(src)?, &ReadOptions::default())?;
    println!(
        "{} holds {} image(s):",
        source.input(),
        source.images().len()
    );
    for (n, image) in source.images().iter().enumerate() {
        println!("  @{n} {} {}", image.config.digest, image.display_name());
    }
    // Write the first image; every layer is verified as it streams, and the layout
    // appears at `dst` only once complete.
    let first = source.images().first().ok_or("no image")?;
    let mut sink = create_sink(dst, Format::OCI, &SinkOptions::default())?;
    sink.put_images(std::slice::from_ref(first), &NoProgress)?;
    sink.commit()?;
    println!("wrote {} to {dst}", first.display_name());
    Ok(())
}
