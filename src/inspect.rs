//! `inspect` (metadata only) and `verify` (every byte).

use serde_json::{json, Value};

use crate::blob::verify_layer;
use crate::error::Result;
use crate::image::Image;
use crate::layout::Source;
use crate::text::shown;

/// The `inspect --json` document for the images of `source` at `selected` (positions
/// in `source.images`, which are the `index` each image is shown with).
pub fn inspect_json(source: &Source, selected: &[usize]) -> Value {
    let images: Vec<Value> = selected
        .iter()
        .map(|&index| {
            let image = &source.images[index];
            let layers: Vec<Value> = image
                .layers
                .iter()
                .map(|l| {
                    json!({
                        "digest": l.digest.to_string(),
                        "diff_id": l.diff_id.as_ref().map(|d| d.to_string()),
                        "size": l.size,
                        "media_type": l.media_type,
                        "compression": l.compression.name(),
                    })
                })
                .collect();
            json!({
                "index": index,
                // Sorted, so the document does not depend on how the source ordered them.
                "tags": sorted_tags(image),
                "config": {
                    "digest": image.config.digest.to_string(),
                    "size": image.config.size,
                    "media_type": image.config.media_type,
                },
                "manifest": image.manifest.as_ref().map(|m| json!({
                    "digest": m.digest.to_string(),
                    "media_type": m.media_type,
                })),
                "platform": {
                    "os": image.platform.os,
                    "architecture": image.platform.architecture,
                    "variant": image.platform.variant,
                },
                "layers": layers,
            })
        })
        .collect();
    json!({"format": source.format.name(), "images": images})
}

fn sorted_tags(image: &Image) -> Vec<String> {
    let mut tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
    tags.sort();
    tags
}

/// The names of an image for one line of text: tags in the source's order, then OCI
/// ref names, escaped.
pub fn names_line(image: &Image) -> String {
    let mut names: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
    names.extend(
        image
            .ref_names
            .iter()
            .map(|n| format!("(ref) {}", shown(n))),
    );
    if names.is_empty() {
        names.push("<none>".into());
    }
    if image.artifact {
        names.push(format!("[artifact {}]", shown(&image.config.media_type)));
    }
    names.join(", ")
}

/// A human-readable table of the images of `source` at `selected`, numbered by their
/// position in the source.
pub fn inspect_table(source: &Source, selected: &[usize]) -> String {
    let mut out = format!("format: {}\n", source.format.name());
    let rows: Vec<[String; 5]> = selected
        .iter()
        .map(|&i| {
            let im = &source.images[i];
            let size: u64 = im.layers.iter().map(|l| l.size).sum();
            [
                format!("@{i}"),
                im.config.digest.short().to_string(),
                shown(&im.platform.to_string()),
                format!("{} ({})", im.layers.len(), human_size(size)),
                names_line(im),
            ]
        })
        .collect();
    let header = ["#", "IMAGE ID", "PLATFORM", "LAYERS", "NAMES"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(header));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What `verify` checked.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Images checked.
    pub images: usize,
    /// Distinct layers read.
    pub layers: usize,
    /// Bytes of layer data read.
    pub bytes: u64,
}

/// Read every layer of `images`, checking sizes, digests and diff_ids. Configs and
/// manifests were verified when the source was read. Layers are checked on as many
/// threads as the machine has cores; the first failing layer (in image order) is
/// reported.
pub fn verify(images: &[Image]) -> Result<VerifyReport> {
    let mut seen = std::collections::HashSet::new();
    let mut work = Vec::new();
    for image in images {
        for layer in &image.layers {
            if seen.insert((layer.digest.clone(), layer.diff_id.clone())) {
                work.push((image, layer));
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<()>>>> =
        work.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len())
        .max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((image, layer)) = work.get(i) else {
                        break;
                    };
                    let result = verify_layer(image, layer);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                })
            })
            .collect();
        // Join each thread (not only its closure) so none is still exiting when this returns.
        for worker in workers {
            let _ = worker.join();
        }
    });
    for result in results {
        result
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .expect("every layer was checked")?;
    }
    Ok(VerifyReport {
        images: images.len(),
        layers: work.len(),
        bytes: work.iter().map(|(_, l)| l.size).sum(),
    })
}
