//! The `docker save` layout, in a tar (`docker-archive`) or a directory (`docker-dir`):
//! manifest.json archives of every Docker since 1.10 and of the tools that imitate it,
//! pre-1.10 archives, and the Docker >= 25 hybrid with an OCI layout inside.

mod read;
mod v1;
mod write;

pub(crate) use v1::has_v1_layers;

pub(crate) use write::DockerWriter;

use super::blobs::LayoutWriter;
use super::context::Meta;
use super::{keep_platform, LayoutOps, ReadOptions, WriteOptions};
use crate::error::{Error, Result, Setting};
use crate::model::image::{parse_json, Image};
use crate::sink::LayerPolicy;

/// Reading and writing docker-save archives and trees.
pub(crate) const OPS: LayoutOps = LayoutOps {
    holds_many: true,
    takes_docker_layout: true,
    compresses_layers: false,
    bare_names_are_ref_names: false,
    read: read_any,
    writer,
    append: None,
    manifest_path: None,
};

/// manifest.json is the image list when there is one; otherwise the archive predates
/// Docker 1.10.
fn read_any(meta: &Meta, options: &ReadOptions, warnings: &mut Vec<String>) -> Result<Vec<Image>> {
    let images = match meta.read_top("manifest.json")? {
        Some(file) => {
            let list: serde_json::Value = parse_json(&file.bytes, "manifest.json")?;
            read::read(meta, &list, options, warnings)?
        }
        None => v1::read_pre_1_10(meta, warnings)?,
    };
    keep_platform(images, options)
}

fn writer(options: &WriteOptions) -> Result<(Box<dyn LayoutWriter>, LayerPolicy)> {
    if options.manifest_format.is_some() {
        return Err(Error::Usage(format!(
            "a docker archive holds no manifests of its own (manifest.json lists configs and layers); {} applies to registries and dir outputs",
            Setting::ManifestFormat
        )));
    }
    let layout = options.docker_layout.unwrap_or_default();
    Ok((
        Box::new(DockerWriter::new(layout)),
        LayerPolicy::UNCOMPRESSED,
    ))
}

#[cfg(test)]
mod tests {
    /// Every fixture of this layout, made by the real tools, reads as they describe it.
    #[test]
    fn reads_the_fixtures_as_the_real_tools_describe_them() {
        crate::formats::fixture_check::check_all(&[
            "docker-save-basic",
            "docker-save-gzip",
            "docker-save-multi",
            "docker-save-untagged",
            "docker-save-xz",
            "docker-save-zstd",
            "docker-dir-multi",
            "skopeo-docker-archive",
        ]);
    }
}
