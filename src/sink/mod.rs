//! Writing images into a destination, blob by blob. A transport's destination is an
//! [`ImageDestination`]: it is asked whether it holds a blob, given the blobs it lacks
//! as verified streams, then each manifest with its exact bytes, then the names of
//! what it lists, and commits. [`ImageSink`] is the one pipeline that turns images
//! into those calls (which layers to keep, decompress or compress, which manifest
//! bytes to keep), the same for every transport. This module names no transport.

mod blobs;
mod manifests;

pub use manifests::{LayerPolicy, ManifestFormat};

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use crate::destination::Plan;
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::model::media::Compression;
use crate::progress::Progress;
use crate::referrers::{AttachedBy, AttachedManifest};
use blobs::{BlobWriter, Computed};
use manifests::{list_written, put_image_blobs, Listed};

/// What a blob is, for the destination it is put into: which image it is put for and
/// its place there.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct BlobInfo<'a> {
    /// Its digest; `None` when it is known only once all of it is read (a layer
    /// compressed anew, or one whose source records no digest): the destination
    /// computes it then.
    pub digest: Option<&'a Digest>,
    /// Its size, when known before it is read.
    pub size: Option<u64>,
    /// The image it is put for.
    pub image: &'a Image,
    /// What it is in that image.
    pub role: BlobRole,
}

/// What a blob is in its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobRole {
    /// The image's config.
    Config,
    /// Layer `index` of the image (0 is the base), with the compression of the bytes
    /// put (`None` for a layer written uncompressed).
    Layer {
        /// The layer's position in the image.
        index: usize,
        /// How the bytes put are compressed.
        compression: Compression,
    },
    /// A config or layer of something attached to the image (a signature, an SBOM: a
    /// referrer's manifest names it), put with its exact bytes.
    Attached,
}

/// A manifest or index put into a destination, with its exact bytes.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ManifestInfo<'a> {
    /// The bytes, which the destination stores as they are (their digest is what
    /// signatures name).
    pub bytes: &'a [u8],
    /// Its media type, digest and size.
    pub descriptor: &'a Descriptor,
    /// The image it is the manifest of; `None` for an index.
    pub image: Option<&'a Image>,
    /// For an image's manifest: the digest of the config as put.
    pub config: Option<&'a Digest>,
    /// For an image's manifest: the digests of its layers as put, in order.
    pub layers: &'a [Digest],
    /// Whether an index put after it lists it: it is then named through that index
    /// (a registry stores it by digest), not by [`ImageDestination::put_names`].
    pub listed_by_index: bool,
    /// For a referrer carried with the images (a signature, an SBOM, an attestation):
    /// what it is attached to and how; `None` for an image's manifest or an index.
    pub attached: Option<Attachment<'a>>,
}

/// How a referrer put with [`ManifestInfo::attached`] hangs off what it refers to.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Attachment<'a> {
    /// The digest of the manifest or index it refers to (put before it).
    pub subject: &'a Digest,
    /// The tag it is kept under, for one found through a cosign tag
    /// (`sha256-<hex>.sig`, `.att`, `.sbom`): a destination keeps the same tag. `None`
    /// for an OCI referrer, which names its subject in its `subject` field: a
    /// destination lists it where referrers of that subject are found (a registry's
    /// referrers API, or the fallback tag `sha256-<hex>`).
    pub tag: Option<&'a str>,
    /// Its artifact type, as a referrers index lists it.
    pub artifact_type: Option<&'a str>,
    /// Its annotations, as a referrers index lists them.
    pub annotations: &'a std::collections::BTreeMap<String, String>,
}

/// Where images are written, blob by blob: the files of a layout, uploads to a
/// registry, a daemon's load stream, or a library user's own store.
///
/// [`ImageSink`] calls, for each `put_images`: [`prepare`](Self::prepare) with every
/// image; for each image, [`try_reusing_blob`](Self::try_reusing_blob) for each layer
/// (in order) and the config, then [`put_blob`](Self::put_blob) for each the
/// destination lacks, then [`put_manifest`](Self::put_manifest) with its manifest;
/// then `put_manifest` for each index kept whole (after the images it lists), and
/// [`put_names`](Self::put_names) for each image or index the destination lists at
/// its top. [`commit`](Self::commit) makes it all visible at once; a destination
/// dropped without it shows nothing of what was put.
///
/// ```
/// use std::io::Read;
/// use dockhand::{BlobInfo, CommitReport, Descriptor, Digest, Image, ImageDestination};
/// use dockhand::{ImageSink, LayerPolicy, ManifestInfo, NoProgress, Result};
///
/// /// Keeps every blob and manifest in memory, by digest.
/// #[derive(Default)]
/// struct Memory { blobs: Vec<(Digest, Vec<u8>)>, named: Vec<Digest> }
///
/// impl ImageDestination for Memory {
///     fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>> {
///         let held = self.blobs.iter().find(|(d, _)| Some(d) == blob.digest);
///         Ok(held.map(|(_, bytes)| bytes.len() as u64))
///     }
///     fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)> {
///         let mut bytes = Vec::new();
///         data.read_to_end(&mut bytes).unwrap(); // verified by the pipeline as it streams
///         let digest = blob.digest.cloned().unwrap_or_else(|| Digest::of(&bytes));
///         let size = bytes.len() as u64;
///         self.blobs.push((digest.clone(), bytes));
///         Ok((digest, size))
///     }
///     fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()> {
///         self.blobs.push((manifest.descriptor.digest.clone(), manifest.bytes.to_vec()));
///         Ok(())
///     }
///     fn put_names(&mut self, manifest: &Descriptor, _image: &Image) -> Result<()> {
///         self.named.push(manifest.digest.clone());
///         Ok(())
///     }
///     fn commit(self: Box<Self>) -> Result<CommitReport> {
///         assert_eq!(self.named.len(), 1);
///         Ok(CommitReport::default())
///     }
/// }
///
/// # use dockhand::{open_source, Location, ReadOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let mut sink = ImageSink::new(Box::new(Memory::default()), LayerPolicy::default());
/// sink.put_images(&source.images, &NoProgress)?;
/// sink.commit()?;
/// # Ok::<(), dockhand::Error>(())
/// ```
pub trait ImageDestination {
    /// Check, before any blob is put, that the destination can take `images` as they
    /// are named (a registry tag names one image; a docker archive holds no
    /// artifacts); returns warnings for the user.
    fn prepare(&mut self, _images: &[Image]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The size of the blob `blob.digest` when the destination holds it already (put
    /// earlier in this run, or there before it), so that it is not put again. Asked
    /// for every blob of every image, also one put already for an earlier image:
    /// answer that from memory. `blob.size`, when given, must match.
    fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>>;
    /// Put a blob from `data`, which the pipeline verifies as it streams (a blob that
    /// is not what its digest says fails the read, and the destination must then
    /// keep nothing of it). Returns its digest (computed when `blob.digest` is
    /// `None`) and size.
    fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)>;
    /// A handle for putting several layers at once from several threads, when the
    /// destination can take them so (a directory, a registry).
    fn concurrent(&self) -> Option<Box<dyn ConcurrentBlobs + '_>> {
        None
    }
    /// Put a manifest or index, byte for byte.
    fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()>;
    /// List the manifest or index `manifest` at the destination's top, named as
    /// `image` is (its tags and OCI ref names; for an index, its first image's names
    /// and no platform).
    fn put_names(&mut self, manifest: &Descriptor, image: &Image) -> Result<()>;
    /// Make everything put visible at the destination at once; what it did.
    fn commit(self: Box<Self>) -> Result<CommitReport>;
    /// How the destination is written (`None` for a stream or a service), as decided
    /// before anything was put.
    fn plan(&self) -> Option<Plan> {
        None
    }
    /// Where a piped input should spool its big entries (see
    /// [`crate::ReadOptions::spool_dir`]).
    fn spool_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Putting blobs from several threads at once: [`ImageDestination::concurrent`].
pub trait ConcurrentBlobs: Sync {
    /// Put the blob `blob.digest` (always given here) from `data`, verified by the
    /// caller as it streams; returns its size. Called concurrently for different
    /// blobs; a later [`ImageDestination::try_reusing_blob`] must find it.
    fn put_blob_shared(&self, blob: &BlobInfo, data: &mut dyn Read) -> Result<u64>;
    /// Give `file` (a spooled input's, verified by the caller) the blob's place
    /// without copying it, where the destination can (a directory links it in);
    /// `false` when it cannot, and the caller puts the bytes. A later
    /// [`ImageDestination::try_reusing_blob`] must find a blob adopted.
    fn adopt(&self, _digest: &Digest, _file: &std::fs::File) -> Result<bool> {
        Ok(false)
    }
    /// How many blobs to put at once.
    fn jobs(&self) -> usize;
}

/// What a commit did: [`ImageSink::commit_with_report`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitReport {
    /// How the destination was written (see [`ImageSink::commit_with_plan`]).
    pub plan: Option<Plan>,
    /// What the destination said it did, line by line.
    pub notes: Vec<String>,
    /// Each reference the destination now holds, as the destination names it (a
    /// registry's `docker://HOST/REPO:TAG`), with the digest of the manifest (or
    /// index) it holds there; empty for a destination that names nothing so.
    pub stored: Vec<(String, Digest)>,
    /// The digest of each manifest (or index kept whole) the destination lists, one per
    /// image or index named, in order: filled by [`ImageSink::commit_with_report`] for
    /// every destination, whatever its destination's `commit` returned.
    pub manifests: Vec<Digest>,
}

impl CommitReport {
    /// A report of `plan`, with no notes.
    pub fn of_plan(plan: Option<Plan>) -> CommitReport {
        CommitReport {
            plan,
            ..CommitReport::default()
        }
    }
}

/// Where images are written: an [`ImageDestination`] and how layers are written into
/// it, committed atomically. Every transport's destination is written through it.
///
/// ```
/// use dockhand::{create_sink, open_source, Format, NoProgress, SinkOptions};
/// # use dockhand::{Location, ReadOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("image.tar");
///
/// let options = SinkOptions::default();
/// let mut sink = create_sink(dst.to_str().unwrap(), Format::OCI_ARCHIVE, &options)?;
/// sink.put_images(&source.images, &NoProgress)?;
/// drop(sink); // not committed: the destination stays absent, the staging is removed
/// assert!(!dst.exists());
/// assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub struct ImageSink<'a> {
    destination: Box<dyn ImageDestination + 'a>,
    layers: LayerPolicy,
    /// Digests computed (layers hashed or compressed) for images put earlier.
    computed: Computed,
    /// The manifests (or indexes) named, in order: [`CommitReport::manifests`].
    listed: Vec<Digest>,
}

impl<'a> ImageSink<'a> {
    /// A sink writing into `destination`, its layers as `layers` says.
    pub fn new(destination: Box<dyn ImageDestination + 'a>, layers: LayerPolicy) -> Self {
        ImageSink {
            destination,
            layers,
            computed: Computed::default(),
            listed: Vec::new(),
        }
    }

    /// Write `images`: blobs first, each verified as it streams, then the manifests
    /// that name them, then the names, telling `progress` as layers go. A multi-platform
    /// index the images were read from with `--all` is kept (its bytes when every
    /// image it lists keeps its manifest). Returns warnings.
    pub fn put_images(&mut self, images: &[Image], progress: &dyn Progress) -> Result<Vec<String>> {
        self.put_images_with(images, &[], progress)
    }

    /// [`ImageSink::put_images`], with what is attached to them
    /// ([`crate::Source::attachments`]): each referrer's blobs and exact manifest bytes
    /// after what it refers to, with its [`Attachment`]; a BuildKit attestation before
    /// the index that lists it, which then keeps its bytes. What something refers to
    /// must be written with the digest it names: an image whose manifest changes on
    /// the way (layers compressed anew, another manifest format) cannot take its
    /// referrers along, and the call fails with [`Error::ReferrersCannotFollow`]
    /// before any referrer is put.
    ///
    /// [`Error::ReferrersCannotFollow`]: crate::Error::ReferrersCannotFollow
    pub fn put_images_with(
        &mut self,
        images: &[Image],
        attached: &[AttachedManifest],
        progress: &dyn Progress,
    ) -> Result<Vec<String>> {
        if images.is_empty() && !attached.is_empty() {
            return Err(crate::Error::Unsupported(
                "referrers were given without the images they refer to".into(),
            ));
        }
        let warnings = self.destination.prepare(images)?;
        let destination = &mut *self.destination;
        let mut written = Vec::with_capacity(images.len());
        // Every manifest and index written so far, by digest: what a referrer may name.
        let mut present: HashSet<Digest> = HashSet::new();
        for image in images {
            let mut blobs = BlobWriter::new(destination, &mut self.computed, progress);
            let image_written = put_image_blobs(&mut blobs, image, self.layers)?;
            destination.put_manifest(&ManifestInfo {
                bytes: &image_written.manifest_bytes,
                descriptor: &image_written.manifest,
                image: Some(image),
                config: Some(&image_written.config),
                layers: &image_written.layers,
                listed_by_index: image.index.is_some(),
                attached: None,
            })?;
            present.insert(image_written.manifest.digest.clone());
            written.push(image_written);
        }
        let carried_digests: HashSet<&Digest> =
            attached.iter().map(|a| &a.descriptor.digest).collect();
        let follows = |subject: &Digest, present: &HashSet<Digest>| -> Result<()> {
            if present.contains(subject) || carried_digests.contains(subject) {
                return Ok(());
            }
            let changed = images.iter().position(|image| {
                image.manifest.as_ref().map(|m| &m.digest) == Some(subject)
                    || image.index.as_ref().map(|i| &i.descriptor.digest) == Some(subject)
            });
            Err(crate::Error::ReferrersCannotFollow {
                subject: subject.clone(),
                image: changed.map(|i| images[i].display_name()),
            })
        };
        // What an index lists goes in before it (BuildKit attestations, the members of
        // a referrer that is an index).
        let mut carried: HashSet<Digest> = HashSet::new();
        let anchor = |subject: &Digest| -> &Image {
            images
                .iter()
                .find(|image| {
                    image.manifest.as_ref().map(|m| &m.digest) == Some(subject)
                        || image.index.as_ref().map(|i| &i.descriptor.digest) == Some(subject)
                })
                .unwrap_or(&images[0])
        };
        for item in attached.iter().filter(|a| a.by == AttachedBy::Index) {
            follows(&item.subject, &present)?;
            let image = anchor(&item.subject);
            for (descriptor, blob) in &item.blobs {
                blobs::put_attached_blob(destination, image, descriptor, &**blob)?;
            }
            destination.put_manifest(&ManifestInfo {
                bytes: &item.bytes,
                descriptor: &item.descriptor,
                image: None,
                config: None,
                layers: &[],
                listed_by_index: true,
                attached: None,
            })?;
            carried.insert(item.descriptor.digest.clone());
        }
        for entry in list_written(images, &written, &carried) {
            match entry {
                Listed::Image(i) => {
                    destination.put_names(&written[i].manifest, &images[i])?;
                    self.listed.push(written[i].manifest.digest.clone());
                }
                Listed::Index {
                    descriptor,
                    bytes,
                    members,
                } => {
                    destination.put_manifest(&ManifestInfo {
                        bytes: &bytes,
                        descriptor: &descriptor,
                        image: None,
                        config: None,
                        layers: &[],
                        listed_by_index: false,
                        attached: None,
                    })?;
                    // An index is named as its first image, without a platform.
                    let mut named = images[members[0]].clone();
                    named.platform = Default::default();
                    destination.put_names(&descriptor, &named)?;
                    present.insert(descriptor.digest.clone());
                    self.listed.push(descriptor.digest.clone());
                }
            }
        }
        // Every referrer's subject is checked before the first is put.
        for item in attached.iter().filter(|a| a.by != AttachedBy::Index) {
            follows(&item.subject, &present)?;
        }
        for item in attached.iter().filter(|a| a.by != AttachedBy::Index) {
            let image = anchor(&item.subject);
            for (descriptor, blob) in &item.blobs {
                blobs::put_attached_blob(destination, image, descriptor, &**blob)?;
            }
            let tag = match &item.by {
                AttachedBy::Tag(tag) => Some(tag.as_str()),
                _ => None,
            };
            destination.put_manifest(&ManifestInfo {
                bytes: &item.bytes,
                descriptor: &item.descriptor,
                image: None,
                config: None,
                layers: &[],
                listed_by_index: false,
                attached: Some(Attachment {
                    subject: &item.subject,
                    tag,
                    artifact_type: item.artifact_type.as_deref(),
                    annotations: &item.annotations,
                }),
            })?;
        }
        Ok(warnings)
    }

    /// Make everything written visible at the destination at once. A sink dropped
    /// without committing leaves the destination as it was.
    pub fn commit(self) -> Result<()> {
        self.commit_with_report().map(drop)
    }

    /// How the destination is written (`None` for a stream), as decided before
    /// anything was written.
    pub fn plan(&self) -> Option<Plan> {
        self.destination.plan()
    }

    /// [`ImageSink::commit`], and how the destination was written in the end: the
    /// [`plan`](ImageSink::plan), or [`Plan::AddToOciLayout`] when a new OCI layout
    /// found that concurrent runs had created one at its destination meanwhile and
    /// added its images to that.
    ///
    /// ```
    /// use dockhand::{create_sink, open_source, Format, NoProgress, Plan};
    /// # use dockhand::{Location, ReadOptions, SinkOptions};
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dst = tmp.path().join("layout");
    /// let dst = dst.to_str().unwrap();
    ///
    /// // Two runs plan a new layout; the second finds the first's there when it commits.
    /// let mut first = create_sink(dst, Format::OCI, &SinkOptions::default())?;
    /// let mut second = create_sink(dst, Format::OCI, &SinkOptions::default())?;
    /// first.put_images(&source.images[..1], &NoProgress)?;
    /// second.put_images(&source.images[1..2], &NoProgress)?;
    /// assert_eq!(first.commit_with_plan()?, Some(Plan::Create));
    /// assert_eq!(second.commit_with_plan()?, Some(Plan::AddToOciLayout));
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn commit_with_plan(self) -> Result<Option<Plan>> {
        self.commit_with_report().map(|report| report.plan)
    }

    /// [`ImageSink::commit_with_plan`], and what the destination said it did, for the
    /// user (a daemon's `Loaded image: NAME:TAG`).
    pub fn commit_with_report(self) -> Result<CommitReport> {
        let mut report = self.destination.commit()?;
        report.manifests = self.listed;
        Ok(report)
    }

    /// Where a piped input should spool its big entries (see
    /// [`crate::ReadOptions::spool_dir`]).
    pub fn spool_dir(&self) -> Option<PathBuf> {
        self.destination.spool_dir()
    }
}
