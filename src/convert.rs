//! The conversion pipeline: open a source, select images, name them, write a sink.

use std::io::{self, IsTerminal};
use std::path::Path;

use crate::container::read_limited;
use crate::container::{
    open_input, AppendWriter, DirWriter, TarFileWriter, TarStreamWriter, TreeWriter,
};
use crate::destination::{self, Output, Plan};
use crate::error::{Error, Result};
use crate::formats::{
    merge_index, write_dir_transport, write_docker, write_oci, DockerLayout, ReadOptions, Source,
};
use crate::model::image::{Format, Image, Platform, MAX_JSON_SIZE};
use crate::model::reference::{valid_tag, Reference};
use crate::text::shown;

/// A source or destination as given on the command line: a path, `-`, or
/// `TRANSPORT:PATH[:REF]` in skopeo's syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The format named by a transport prefix.
    pub transport: Option<Format>,
    /// The path, or `-` for stdin/stdout.
    pub path: String,
    /// The reference after the path (`name:tag` or `@N`), if any.
    pub reference: Option<String>,
}

/// Transports of skopeo and containers/image that dockhand does not speak (yet).
const FOREIGN_TRANSPORTS: &[(&str, &str)] = &[
    ("docker", "a registry"),
    ("docker-daemon", "a Docker daemon's image store"),
    ("containers-storage", "podman's and buildah's image store"),
    ("ostree", "an ostree repository"),
    ("sif", "a Singularity image"),
    ("tarball", "a tarball of a root filesystem"),
];

/// The transports dockhand reads and writes, for messages.
pub const TRANSPORTS: &str = "docker-archive, docker-dir, oci, oci-archive and dir";

impl Location {
    /// Parse `s`. A prefix that is not one of dockhand's transports is part of the
    /// path when that path exists; otherwise it is an unknown transport (a usage
    /// error), so that `docker://busybox` or `containers-storage:x` is never taken for
    /// a file name.
    pub fn parse(s: &str) -> Result<Location> {
        if let Some((prefix, rest)) = s.split_once(':') {
            if let Some(format) = Format::parse(prefix) {
                let (path, reference) = match rest.split_once(':') {
                    Some((p, r)) if !r.is_empty() => (p.to_string(), Some(r.to_string())),
                    Some((p, _)) => (p.to_string(), None),
                    None => (rest.to_string(), None),
                };
                if path.is_empty() {
                    return Err(Error::Usage(format!(
                        "{}: the {prefix} transport needs a path",
                        shown(s)
                    )));
                }
                return Ok(Location {
                    transport: Some(format),
                    path,
                    reference,
                });
            }
            let transport_like = !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if transport_like && Path::new(s).symlink_metadata().is_err() {
                let hint = match FOREIGN_TRANSPORTS.iter().find(|(name, _)| *name == prefix) {
                    Some((_, what)) => format!(" ({what})"),
                    None => format!(" (for a file whose name has a colon, write ./{})", shown(s)),
                };
                return Err(Error::Usage(format!(
                    "{}: dockhand does not support the transport {prefix:?}; it reads and writes {TRANSPORTS}{hint}",
                    shown(s)
                )));
            }
        }
        Ok(Location {
            transport: None,
            path: s.to_string(),
            reference: None,
        })
    }
}

/// Which images to take from a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The N-th image (0-based), as `@N`.
    Index(usize),
    /// The image carrying this name: a normalized reference, or an OCI ref name.
    Name {
        /// The text the user gave, matched against OCI ref names as is.
        raw: String,
        /// Its normalized form, matched against tags.
        reference: Option<Reference>,
    },
}

impl Selector {
    /// Parse `@N` or an image reference; anything else is a usage error.
    pub fn parse(s: &str) -> Result<Selector> {
        if let Some(n) = s.strip_prefix('@') {
            return n.parse().map(Selector::Index).map_err(|_| {
                Error::Usage(format!("invalid image index {}: expected @N", shown(s)))
            });
        }
        let reference = Reference::parse(s).ok();
        if reference.is_none() && !valid_tag(s) {
            return Err(Error::Usage(format!(
                "invalid image reference {}: expected a name such as busybox:1.36, a tag, or @N",
                shown(s)
            )));
        }
        Ok(Selector::Name {
            raw: s.to_string(),
            reference,
        })
    }

    fn matches(&self, index: usize, image: &Image) -> bool {
        match self {
            Selector::Index(n) => *n == index,
            Selector::Name { raw, reference } => {
                image.ref_names.iter().any(|n| n == raw)
                    || reference.as_ref().is_some_and(|r| image.tags.contains(r))
                    || (!raw.contains(['/', ':']) && image.tags.iter().any(|t| t.tag() == raw))
            }
        }
    }
}

/// The positions in `images` (the numbers `inspect` shows as `@N`) of the images the
/// selectors pick, in selector order without repeats; all images when there are none.
pub fn select(images: &[Image], selectors: &[Selector]) -> Result<Vec<usize>> {
    if selectors.is_empty() {
        return Ok((0..images.len()).collect());
    }
    let mut out: Vec<usize> = Vec::new();
    for selector in selectors {
        let hits: Vec<usize> = images
            .iter()
            .enumerate()
            .filter(|(i, im)| selector.matches(*i, im))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let all: Vec<usize> = (0..images.len()).collect();
            return Err(Error::Selection(format!(
                "no image matches {}; the source holds: {}",
                describe_selector(selector),
                candidates(images, &all)
            )));
        }
        for hit in hits {
            let same = |&o: &usize| {
                images[o].config.digest == images[hit].config.digest
                    && images[o].manifest == images[hit].manifest
            };
            if !out.iter().any(same) {
                out.push(hit);
            }
        }
    }
    Ok(out)
}

fn describe_selector(s: &Selector) -> String {
    match s {
        Selector::Index(n) => format!("@{n}"),
        Selector::Name { raw, .. } => format!("\"{}\"", shown(raw)),
    }
}

/// A one-line list of the images at `indices` of `images`, numbered as `inspect`
/// numbers them, for messages.
pub fn candidates(images: &[Image], indices: &[usize]) -> String {
    const SHOWN: usize = 20;
    let mut text = indices
        .iter()
        .take(SHOWN)
        .map(|&i| format!("@{i} {}", images[i].display_name()))
        .collect::<Vec<_>>()
        .join(", ");
    if indices.len() > SHOWN {
        text.push_str(&format!(" and {} more", indices.len() - SHOWN));
    }
    text
}

/// Options of [`convert`].
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Read the source as this format (default: detect).
    pub from: Option<Format>,
    /// Write this format (default: from the destination's transport or name).
    pub to: Option<Format>,
    /// Images to take (`--image`); all when empty.
    pub images: Vec<String>,
    /// Names for the output image (`--tag`); requires a single selected image.
    pub tags: Vec<String>,
    /// Replace an existing destination that dockhand could have written (see
    /// [`crate::destination`]).
    pub force: bool,
    /// Platform to pick from multi-platform indexes.
    pub platform: Option<Platform>,
    /// Shape of docker-archive and docker-dir outputs (default: legacy); an error for
    /// other outputs.
    pub docker_layout: Option<DockerLayout>,
}

/// What a conversion did.
#[derive(Debug, Default)]
pub struct ConvertReport {
    /// The format read.
    pub from: Option<Format>,
    /// The format written.
    pub to: Option<Format>,
    /// The images written, with the names they were written under.
    pub images: Vec<Image>,
    /// For each written image, its position in the source (what `inspect` numbers).
    pub source_indices: Vec<usize>,
    /// How the destination was written (`None` for stdout).
    pub plan: Option<Plan>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// Open and read a source location.
pub fn open_source(
    location: &Location,
    from: Option<Format>,
    platform: Option<Platform>,
) -> Result<Source> {
    let input = open_input(&location.path)?;
    let options = ReadOptions {
        platform,
        format: from.or(location.transport),
    };
    Source::read(input.tree, &options)
}

/// The format a destination gets when `--to` and its transport say nothing.
pub fn default_format(path: &str) -> Format {
    if path == "-" || path.ends_with(".tar") {
        Format::DockerArchive
    } else {
        Format::Oci
    }
}

/// The selectors of a source reference (`TRANSPORT:PATH:REF`) and `--image` values.
pub fn selectors(location: &Location, images: &[String]) -> Result<Vec<Selector>> {
    location
        .reference
        .iter()
        .chain(images)
        .map(|s| Selector::parse(s))
        .collect()
}

/// `--from`/`--to` and a transport prefix that name different formats.
fn check_agreement(option: Option<Format>, location: &Location, what: &str) -> Result<()> {
    match (option, location.transport) {
        (Some(a), Some(b)) if a != b => Err(Error::Usage(format!(
            "--{what} {} contradicts the transport {}: of {}",
            a.name(),
            b.name(),
            shown(&location.path)
        ))),
        _ => Ok(()),
    }
}

/// Convert `src` to `dst` (both as given on the command line).
///
/// ```no_run
/// use dockhand::{convert, ConvertOptions};
///
/// // `docker save` output to an OCI layout directory, verifying every blob.
/// let report = convert("image.tar", "oci:layout", &ConvertOptions::default())?;
/// println!("{} image(s)", report.images.len());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert(src: &str, dst: &str, options: &ConvertOptions) -> Result<ConvertReport> {
    let src = Location::parse(src)?;
    let dst = Location::parse(dst)?;
    check_agreement(options.from, &src, "from")?;
    check_agreement(options.to, &dst, "to")?;
    let to = options
        .to
        .or(dst.transport)
        .unwrap_or_else(|| default_format(&dst.path));
    if dst.path == "-" && !to.is_tar() {
        return Err(Error::Usage(format!(
            "{} is a directory format; it cannot be written to stdout",
            to.name()
        )));
    }
    let docker_layout = match (options.docker_layout, to) {
        (Some(layout), Format::DockerArchive | Format::DockerDir) => layout,
        (Some(_), _) => {
            return Err(Error::Usage(format!(
                "--docker-layout applies to docker-archive and docker-dir outputs, not {}",
                to.name()
            )))
        }
        (None, _) => DockerLayout::default(),
    };
    let selectors = selectors(&src, &options.images)?;
    let mut names: Vec<String> = options.tags.clone();
    names.extend(dst.reference.clone());
    let names = parse_names(&names, to)?;
    if dst.path == "-" && io::stdout().is_terminal() {
        return Err(Error::Unsupported(
            "refusing to write an archive to a terminal; redirect stdout".into(),
        ));
    }
    let plan = if dst.path == "-" {
        None
    } else {
        let output = if to.is_tar() {
            Output::File
        } else {
            Output::Directory {
                oci: to == Format::Oci,
            }
        };
        let source = (src.path != "-").then(|| Path::new(&src.path));
        Some(destination::plan(
            Path::new(&dst.path),
            output,
            options.force,
            source,
        )?)
    };
    if plan == Some(Plan::AddToOciLayout) {
        check_addable(Path::new(&dst.path))?;
    }
    let source = open_source(&src, options.from, options.platform.clone())?;
    let picked = select(&source.images, &selectors)?;
    if !to.holds_many() && picked.len() != 1 {
        return Err(Error::Selection(format!(
            "{} holds one image but {} are selected; choose one with --image: {}",
            to.name(),
            picked.len(),
            candidates(&source.images, &picked)
        )));
    }
    if let Some((tags, ref_names)) = names {
        if picked.len() != 1 {
            return Err(Error::Selection(format!(
                "--tag (or a destination reference) names one image but {} are selected: {}",
                picked.len(),
                candidates(&source.images, &picked)
            )));
        }
        let image = &source.images[picked[0]];
        let mut renamed = image.clone();
        renamed.tags = tags;
        renamed.ref_names = ref_names;
        return finish(source, picked, vec![renamed], &dst, to, plan, docker_layout);
    }
    let images = picked.iter().map(|&i| source.images[i].clone()).collect();
    finish(source, picked, images, &dst, to, plan, docker_layout)
}

fn finish(
    source: Source,
    picked: Vec<usize>,
    images: Vec<Image>,
    dst: &Location,
    to: Format,
    plan: Option<Plan>,
    docker_layout: DockerLayout,
) -> Result<ConvertReport> {
    let mut warnings = source.warnings.clone();
    let mut writer = open_sink(&dst.path, to, plan)?;
    match to {
        Format::Oci | Format::OciArchive => write_oci(&images, &mut *writer)?,
        Format::DockerArchive | Format::DockerDir => {
            warnings.extend(write_docker(&images, &mut *writer, docker_layout)?);
        }
        Format::Dir => write_dir_transport(&images[0], &mut *writer)?,
    }
    writer.commit()?;
    Ok(ConvertReport {
        from: Some(source.format),
        to: Some(to),
        images,
        source_indices: picked,
        plan,
        warnings,
    })
}

/// Names for the single output image: full references become tags; for OCI outputs a
/// bare name (`1.0`) becomes the ref name, as with skopeo's `oci:DIR:1.0`. `None`
/// when no name is given (the images keep their own).
fn parse_names(names: &[String], to: Format) -> Result<Option<(Vec<Reference>, Vec<String>)>> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    let mut ref_names = Vec::new();
    for name in names {
        let bare = !name.contains(['/', ':', '@']);
        if bare && matches!(to, Format::Oci | Format::OciArchive) {
            if !valid_tag(name) {
                return Err(Error::Usage(format!(
                    "invalid name {}: a tag is letters, digits, '_', '.' and '-'",
                    shown(name)
                )));
            }
            if !ref_names.contains(name) {
                ref_names.push(name.clone());
            }
        } else {
            let r = Reference::parse(name).map_err(|e| Error::Usage(shown(&e)))?;
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
    }
    Ok(Some((tags, ref_names)))
}

/// Fail before any blob is written when the OCI layout to add to cannot be added to.
fn check_addable(dest: &Path) -> Result<()> {
    let shown_dest = shown(&dest.to_string_lossy());
    let refuse = |reason: String| Error::DestinationRefused {
        path: shown_dest.clone(),
        reason,
    };
    let marker = dest.join("oci-layout");
    if let Ok(bytes) = std::fs::read(&marker) {
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["imageLayoutVersion"].as_str().map(String::from));
        if !version.as_deref().is_some_and(|v| v.starts_with("1.")) {
            return Err(refuse(
                "its oci-layout file does not say imageLayoutVersion 1.x, so it is not added to (use --force to replace it)".into(),
            ));
        }
    }
    let index = match std::fs::File::open(dest.join("index.json")) {
        Ok(f) => Some(read_limited(f, MAX_JSON_SIZE, "index.json")?),
        Err(_) => None,
    };
    merge_index(index.as_deref(), br#"{"manifests":[]}"#).map_err(|e| refuse(e.to_string()))?;
    Ok(())
}

fn open_sink(path: &str, to: Format, plan: Option<Plan>) -> Result<Box<dyn TreeWriter>> {
    let Some(plan) = plan else {
        // Write to the descriptor directly: std's stdout is line-buffered, which would
        // scan every byte of the archive for newlines.
        let fd = std::os::fd::AsFd::as_fd(&io::stdout())
            .try_clone_to_owned()
            .map_err(|e| Error::io("opening stdout", e))?;
        return Ok(Box::new(TarStreamWriter::new(
            io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd)),
            "stdout",
        )));
    };
    let dest = Path::new(path);
    Ok(match plan {
        Plan::AddToOciLayout => Box::new(AppendWriter::open(
            dest,
            "index.json",
            &["oci-layout"],
            merge_index,
        )?),
        plan if to.is_tar() => Box::new(TarFileWriter::create(dest, plan == Plan::Replace)?),
        plan => Box::new(DirWriter::create(dest, plan)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_like_skopeo() {
        let l = Location::parse("docker-archive:x.tar:busybox:latest").unwrap();
        assert_eq!(l.transport, Some(Format::DockerArchive));
        assert_eq!(l.path, "x.tar");
        assert_eq!(l.reference.as_deref(), Some("busybox:latest"));
        let l = Location::parse("oci:dir").unwrap();
        assert_eq!(
            (l.transport, l.path.as_str(), l.reference),
            (Some(Format::Oci), "dir", None)
        );
        let l = Location::parse("./some:path").unwrap();
        assert_eq!((l.transport, l.path.as_str()), (None, "./some:path"));
        assert_eq!(Location::parse("-").unwrap().path, "-");
    }

    #[test]
    fn unknown_transports_are_usage_errors() {
        for s in [
            "docker://busybox",
            "docker-daemon:busybox:latest",
            "foo:bar",
            "oci:",
        ] {
            let err = Location::parse(s).unwrap_err();
            assert!(err.is_usage(), "{s}: {err}");
        }
        let err = Location::parse("docker://busybox").unwrap_err().to_string();
        assert!(
            err.contains("registry") && err.contains("oci-archive"),
            "{err}"
        );
    }

    #[test]
    fn default_formats() {
        assert_eq!(default_format("-"), Format::DockerArchive);
        assert_eq!(default_format("out.tar"), Format::DockerArchive);
        assert_eq!(default_format("out"), Format::Oci);
    }
}
