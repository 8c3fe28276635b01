//! Writing OCI image layouts, to a directory or a tar.

use serde_json::{json, Value};

use super::index::index_json_with;
use super::ANNOTATION_REF_NAME;
use crate::container::TreeWriter;
use crate::error::Result;
use crate::formats::blobs::{BlobFiles, LayoutWriter};
use crate::formats::manifest::BLOBS_PREFIX;

use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::model::media;
use crate::referrers::fallback_tag;
use crate::sink::{Attachment, ManifestInfo};

/// The `oci-layout` file dockhand writes (the same bytes as Docker >= 25).
pub const OCI_LAYOUT_FILE: &str = "{\"imageLayoutVersion\": \"1.0.0\"}";

/// The OCI image layout: blobs under `blobs/sha256/`, and `index.json` listing each
/// image or index put under its names, written last with `oci-layout`.
pub(crate) struct OciWriter {
    blobs: BlobFiles,
    /// What index.json lists, in order: each image or index with the names it is
    /// listed under.
    named: Vec<(Image, Descriptor)>,
    /// Referrers carried, as a registry without the referrers API holds them: each
    /// cosign tag with its manifest, and for each subject (in the order first put)
    /// the descriptors its fallback tag `sha256-<hex>` lists.
    tagged: Vec<(String, Descriptor)>,
    fallback: Vec<(Digest, Vec<Value>)>,
}

impl OciWriter {
    pub(crate) fn new() -> OciWriter {
        OciWriter {
            blobs: BlobFiles::new(BLOBS_PREFIX),
            named: Vec::new(),
            tagged: Vec::new(),
            fallback: Vec::new(),
        }
    }

    /// Write the fallback indexes, and return the index.json entries of the referrers.
    fn referrer_entries(&mut self, tree: &mut dyn TreeWriter) -> Result<Vec<Value>> {
        let mut entries = Vec::new();
        for (subject, listed) in &self.fallback {
            let index = crate::referrers::referrers_index(listed);
            let digest = Digest::of(&index);
            self.blobs.put_bytes(tree, &digest, &index)?;
            entries.push(json!({
                "mediaType": media::OCI_INDEX,
                "digest": digest.to_string(),
                "size": index.len(),
                "annotations": {ANNOTATION_REF_NAME: fallback_tag(subject)},
            }));
        }
        for (tag, descriptor) in &self.tagged {
            entries.push(json!({
                "mediaType": descriptor.media_type,
                "digest": descriptor.digest.to_string(),
                "size": descriptor.size,
                "annotations": {ANNOTATION_REF_NAME: tag},
            }));
        }
        Ok(entries)
    }
}

/// The entry a referrers index (the API's answer, a fallback tag) lists a referrer
/// with: its descriptor, artifact type and annotations.
pub(crate) fn referrer_descriptor(manifest: &ManifestInfo, attached: &Attachment) -> Value {
    let mut entry = json!({
        "mediaType": manifest.descriptor.media_type,
        "digest": manifest.descriptor.digest.to_string(),
        "size": manifest.descriptor.size,
    });
    if let Some(artifact_type) = attached.artifact_type {
        entry["artifactType"] = json!(artifact_type);
    }
    if !attached.annotations.is_empty() {
        entry["annotations"] = json!(attached.annotations);
    }
    entry
}

impl LayoutWriter for OciWriter {
    fn prepare(&mut self, tree: &mut dyn TreeWriter, _images: &[Image]) -> Result<Vec<String>> {
        tree.dir("blobs")?;
        tree.dir("blobs/sha256")?;
        Ok(Vec::new())
    }
    fn blob_files(&self) -> Option<&BlobFiles> {
        Some(&self.blobs)
    }
    fn put_manifest(&mut self, tree: &mut dyn TreeWriter, manifest: &ManifestInfo) -> Result<()> {
        self.blobs
            .put_bytes(tree, &manifest.descriptor.digest, manifest.bytes)?;
        let Some(attached) = &manifest.attached else {
            return Ok(());
        };
        match attached.tag {
            Some(tag) => {
                if !self.tagged.iter().any(|(t, _)| t == tag) {
                    self.tagged
                        .push((tag.to_string(), manifest.descriptor.clone()));
                }
            }
            None => {
                let entry = referrer_descriptor(manifest, attached);
                let at = match self
                    .fallback
                    .iter()
                    .position(|(s, _)| s == attached.subject)
                {
                    Some(at) => at,
                    None => {
                        self.fallback.push((attached.subject.clone(), Vec::new()));
                        self.fallback.len() - 1
                    }
                };
                let what = fallback_tag(attached.subject);
                crate::referrers::add_listed(&mut self.fallback[at].1, &[entry], &what)?;
            }
        }
        Ok(())
    }
    fn put_names(
        &mut self,
        _tree: &mut dyn TreeWriter,
        manifest: &Descriptor,
        image: &Image,
    ) -> Result<()> {
        self.named.push((image.clone(), manifest.clone()));
        Ok(())
    }
    fn finish(&mut self, tree: &mut dyn TreeWriter) -> Result<()> {
        let referrers = self.referrer_entries(tree)?;
        let pairs: Vec<(&Image, &Descriptor)> = self.named.iter().map(|(i, d)| (i, d)).collect();
        let index = index_json_with(&pairs, referrers);
        tree.file("index.json", index.len() as u64, &mut &index[..])?;
        tree.file(
            "oci-layout",
            OCI_LAYOUT_FILE.len() as u64,
            &mut OCI_LAYOUT_FILE.as_bytes(),
        )
    }
}
