//! The conversion pipeline: open a source, select images, name them, write a sink.

use std::io::{self, IsTerminal};
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{Format, Image, Platform};
use crate::layout::{
    write_dir_transport, write_docker, write_oci, DockerLayout, ReadOptions, Source,
};
use crate::reference::{valid_tag, Reference};
use crate::tree::{open_input, DirWriter, TarFileWriter, TarStreamWriter, TreeWriter};

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

impl Location {
    /// Parse `s`. A prefix that is not a known transport is part of the path.
    pub fn parse(s: &str) -> Location {
        if let Some((prefix, rest)) = s.split_once(':') {
            if let Some(format) = Format::parse(prefix) {
                let (path, reference) = match rest.split_once(':') {
                    Some((p, r)) if !r.is_empty() => (p.to_string(), Some(r.to_string())),
                    Some((p, _)) => (p.to_string(), None),
                    None => (rest.to_string(), None),
                };
                return Location {
                    transport: Some(format),
                    path,
                    reference,
                };
            }
        }
        Location {
            transport: None,
            path: s.to_string(),
            reference: None,
        }
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
    /// Parse `@N` or an image reference.
    pub fn parse(s: &str) -> Result<Selector> {
        if let Some(n) = s.strip_prefix('@') {
            return n
                .parse()
                .map(Selector::Index)
                .map_err(|_| Error::Selection(format!("invalid image index {s:?}: expected @N")));
        }
        let reference = Reference::parse(s).ok();
        if reference.is_none() && !valid_tag(s) {
            return Err(Error::Selection(format!("invalid image reference {s:?}")));
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

/// Pick images by selectors; all images when there are none.
pub fn select(images: &[Image], selectors: &[Selector]) -> Result<Vec<Image>> {
    if selectors.is_empty() {
        return Ok(images.to_vec());
    }
    let mut out: Vec<Image> = Vec::new();
    for selector in selectors {
        let hits: Vec<&Image> = images
            .iter()
            .enumerate()
            .filter(|(i, im)| selector.matches(*i, im))
            .map(|(_, im)| im)
            .collect();
        if hits.is_empty() {
            return Err(Error::Selection(format!(
                "no image matches {}; the source holds: {}",
                describe_selector(selector),
                candidates(images)
            )));
        }
        for hit in hits {
            if !out
                .iter()
                .any(|o| o.config.digest == hit.config.digest && o.manifest == hit.manifest)
            {
                out.push(hit.clone());
            }
        }
    }
    Ok(out)
}

fn describe_selector(s: &Selector) -> String {
    match s {
        Selector::Index(n) => format!("@{n}"),
        Selector::Name { raw, .. } => format!("{raw:?}"),
    }
}

/// A one-line list of images for error messages.
pub fn candidates(images: &[Image]) -> String {
    images
        .iter()
        .enumerate()
        .map(|(i, im)| format!("@{i} {}", im.display_name()))
        .collect::<Vec<_>>()
        .join(", ")
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
    /// Replace an existing destination.
    pub force: bool,
    /// Platform to pick from multi-platform indexes.
    pub platform: Option<Platform>,
    /// Shape of docker-archive and docker-dir outputs.
    pub docker_layout: DockerLayout,
}

/// What a conversion did.
#[derive(Debug, Default)]
pub struct ConvertReport {
    /// The format read.
    pub from: Option<Format>,
    /// The format written.
    pub to: Option<Format>,
    /// The images written.
    pub images: Vec<Image>,
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
    let src = Location::parse(src);
    let dst = Location::parse(dst);
    let to = options
        .to
        .or(dst.transport)
        .unwrap_or_else(|| default_format(&dst.path));
    if dst.path == "-" && !to.is_tar() {
        return Err(Error::Unsupported(format!(
            "{} is a directory format; it cannot be written to stdout",
            to.name()
        )));
    }
    if dst.path == "-" && io::stdout().is_terminal() {
        return Err(Error::Unsupported(
            "refusing to write an archive to a terminal; redirect stdout".into(),
        ));
    }
    if dst.path != "-" && !options.force {
        refuse_existing(Path::new(&dst.path))?;
    }
    let source = open_source(&src, options.from, options.platform.clone())?;
    let mut selectors = Vec::new();
    if let Some(r) = &src.reference {
        selectors.push(Selector::parse(r)?);
    }
    for s in &options.images {
        selectors.push(Selector::parse(s)?);
    }
    let mut images = select(&source.images, &selectors)?;
    if !to.holds_many() && images.len() != 1 {
        return Err(Error::Selection(format!(
            "{} holds one image but {} are selected; choose one with --image: {}",
            to.name(),
            images.len(),
            candidates(&images)
        )));
    }
    let mut names: Vec<String> = options.tags.clone();
    names.extend(dst.reference.clone());
    if !names.is_empty() {
        if images.len() != 1 {
            return Err(Error::Selection(format!(
                "--tag (or a destination reference) names one image but {} are selected: {}",
                images.len(),
                candidates(&images)
            )));
        }
        rename(&mut images[0], &names, to)?;
    }
    let mut warnings = source.warnings.clone();
    let mut writer = open_sink(&dst.path, to, options.force)?;
    match to {
        Format::Oci | Format::OciArchive => write_oci(&images, &mut *writer)?,
        Format::DockerArchive | Format::DockerDir => {
            warnings.extend(write_docker(&images, &mut *writer, options.docker_layout)?);
        }
        Format::Dir => write_dir_transport(&images[0], &mut *writer)?,
    }
    writer.commit()?;
    Ok(ConvertReport {
        from: Some(source.format),
        to: Some(to),
        images,
        warnings,
    })
}

fn refuse_existing(dest: &Path) -> Result<()> {
    let Ok(meta) = dest.symlink_metadata() else {
        return Ok(());
    };
    let empty_dir = meta.is_dir()
        && std::fs::read_dir(dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if empty_dir {
        return Ok(());
    }
    Err(Error::DestinationExists(dest.display().to_string()))
}

/// Replace an image's names with `names`: full references become tags; for OCI
/// outputs a bare name (`1.0`) becomes the ref name, as with skopeo's `oci:DIR:1.0`.
fn rename(image: &mut Image, names: &[String], to: Format) -> Result<()> {
    image.tags.clear();
    image.ref_names.clear();
    for name in names {
        let bare = !name.contains(['/', ':', '@']);
        if bare && matches!(to, Format::Oci | Format::OciArchive) {
            if !valid_tag(name) {
                return Err(Error::Selection(format!("invalid name {name:?}")));
            }
            image.add_names([], [name.clone()]);
        } else {
            let r = Reference::parse(name).map_err(Error::Selection)?;
            image.add_names([r], []);
        }
    }
    Ok(())
}

fn open_sink(path: &str, to: Format, force: bool) -> Result<Box<dyn TreeWriter>> {
    if path == "-" {
        // Write to the descriptor directly: std's stdout is line-buffered, which would
        // scan every byte of the archive for newlines.
        let fd = std::os::fd::AsFd::as_fd(&io::stdout())
            .try_clone_to_owned()
            .map_err(|e| Error::io("opening stdout", e))?;
        return Ok(Box::new(TarStreamWriter::new(
            io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd)),
            "stdout",
        )));
    }
    let dest = Path::new(path);
    if to.is_tar() {
        Ok(Box::new(TarFileWriter::create(dest, force)?))
    } else {
        Ok(Box::new(DirWriter::create(dest, force)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_like_skopeo() {
        let l = Location::parse("docker-archive:x.tar:busybox:latest");
        assert_eq!(l.transport, Some(Format::DockerArchive));
        assert_eq!(l.path, "x.tar");
        assert_eq!(l.reference.as_deref(), Some("busybox:latest"));
        let l = Location::parse("oci:dir");
        assert_eq!(
            (l.transport, l.path.as_str(), l.reference),
            (Some(Format::Oci), "dir", None)
        );
        let l = Location::parse("some:path");
        assert_eq!((l.transport, l.path.as_str()), (None, "some:path"));
        assert_eq!(Location::parse("-").path, "-");
    }

    #[test]
    fn default_formats() {
        assert_eq!(default_format("-"), Format::DockerArchive);
        assert_eq!(default_format("out.tar"), Format::DockerArchive);
        assert_eq!(default_format("out"), Format::Oci);
    }
}
