//! Sources and destinations as the command line gives them: a path, `-` (stdin or
//! stdout), or `TRANSPORT:PATH[:REF]` in skopeo's syntax.

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::LOCAL;
use crate::sink::ImageSink;
use crate::text::shown;
use crate::transport::{Format, Location, ReadOptions, SinkOptions, Source, Transport};

/// Every transport dockhand speaks, in the order help texts list them: the local
/// layouts, registries and the Docker daemon. Location parsing, `--from`/`--to`, help
/// texts, completions and error lists all go through this table.
pub(crate) static TRANSPORTS: [&dyn Transport; 7] = [
    &LOCAL[0],
    &LOCAL[1],
    &LOCAL[2],
    &LOCAL[3],
    &LOCAL[4],
    &crate::registry::DOCKER,
    &crate::daemon::DOCKER_DAEMON,
];

impl Format {
    /// The format a transport name names.
    pub fn parse(name: &str) -> Option<Format> {
        TRANSPORTS
            .iter()
            .find(|t| t.name() == name)
            .map(|t| Format::of(*t))
    }

    /// Every transport dockhand speaks, in the table's order.
    pub fn all() -> impl Iterator<Item = Format> {
        TRANSPORTS.iter().map(|t| Format::of(*t))
    }
}

/// The names of every transport, for messages: "a, b, c and d".
///
/// ```
/// assert_eq!(
///     dockhand::transport_names(),
///     "docker-archive, docker-dir, oci, oci-archive, dir, docker and docker-daemon"
/// );
/// ```
pub fn transport_names() -> String {
    listed(TRANSPORTS.iter().map(|t| t.name()))
}

/// "a, b, c and d".
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// The transports as a location starts with them (`oci`, `docker://`), for messages
/// about a location.
fn transport_prefixes() -> String {
    listed(TRANSPORTS.iter().map(|t| {
        let syntax = t.syntax();
        let prefix = &syntax[..syntax
            .find(|c: char| c.is_ascii_uppercase())
            .unwrap_or(syntax.len())];
        prefix.strip_suffix(':').unwrap_or(prefix)
    }))
}

/// Transports of skopeo and containers/image that dockhand does not speak (yet).
const FOREIGN_TRANSPORTS: &[(&str, &str)] = &[
    ("containers-storage", "podman's and buildah's image store"),
    ("ostree", "an ostree repository"),
    ("sif", "a Singularity image"),
    ("tarball", "a tarball of a root filesystem"),
];

impl Location {
    /// Parse `s`. A prefix that is not one of dockhand's transports is part of the
    /// path when that path exists; otherwise it is an unknown transport (a usage
    /// error), so that `docker://busybox` or `containers-storage:x` is never taken for
    /// a file name.
    ///
    /// ```
    /// use dockhand::{Format, Location};
    ///
    /// let l = Location::parse("oci-archive:image.tar:myapp:1.0")?;
    /// assert_eq!(l.transport, Some(Format::OCI_ARCHIVE));
    /// assert_eq!((l.path.as_str(), l.reference.as_deref()), ("image.tar", Some("myapp:1.0")));
    ///
    /// let l = Location::parse("image.tar")?;
    /// assert_eq!((l.transport, l.path.as_str()), (None, "image.tar"));
    /// assert!(Location::parse("containers-storage:busybox").unwrap_err().is_usage());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Location> {
        if let Some((prefix, rest)) = s.split_once(':') {
            if let Some(format) = Format::parse(prefix) {
                // Checked whole now (a registry reference with a port out of range or
                // credentials in it), so that nothing is created or read for a
                // location that cannot be used.
                let (path, reference) = format.transport().parse(rest)?;
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
                    "{}: dockhand does not support the transport {prefix:?}; its transports are {}{hint}",
                    shown(s),
                    transport_prefixes()
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

/// Open and read the source `location` names, through its transport, or, for a bare
/// path, in the format `options.format` names or the one detected. Only metadata is
/// read; layers are read, verified, when they are written or opened.
///
/// ```
/// use dockhand::{open_source, Format, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// assert_eq!(source.format, Format::DOCKER_ARCHIVE);
/// assert_eq!(source.images.len(), 3);
/// assert_eq!(source.images[2].display_name(), "docker.io/library/dockhand-multi-base:1.0");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn open_source(location: &Location, options: &ReadOptions) -> Result<Source> {
    match location.transport.or(options.format) {
        Some(format) => format.transport().open_source(location, options),
        None => crate::formats::open(&location.path, options),
    }
}

/// Create a sink writing `format` at `path` (`-` for stdout; for a registry,
/// `HOST/REPO[:TAG]`), after deciding what the destination allows (the crate docs'
/// `# Security` section says what). Nothing shows at the destination before
/// [`ImageSink::commit`].
///
/// ```
/// use dockhand::{create_sink, open_source, Format, Location, NoProgress, ReadOptions};
/// use dockhand::SinkOptions;
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let out = tempfile::tempdir().unwrap();
/// let dir = out.path().join("one");
/// let mut sink = create_sink(dir.to_str().unwrap(), Format::DIR, &SinkOptions::default())?;
/// sink.put_images(&source.images[1..2], &NoProgress)?;
/// assert!(!dir.exists()); // nothing appears before the commit
/// sink.commit()?;
/// assert!(dir.join("manifest.json").is_file());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn create_sink(
    path: &str,
    format: Format,
    options: &SinkOptions,
) -> Result<ImageSink<'static>> {
    // `path` may be written with the transport's prefix too (`docker://HOST/REPO`).
    let location = match Location::parse(path) {
        Ok(location) if location.transport == Some(format) => location,
        _ => Location::new(format, path),
    };
    format.transport().create_sink(&location, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_like_skopeo() {
        let l = Location::parse("docker-archive:x.tar:busybox:latest").unwrap();
        assert_eq!(l.transport, Some(Format::DOCKER_ARCHIVE));
        assert_eq!(l.path, "x.tar");
        assert_eq!(l.reference.as_deref(), Some("busybox:latest"));
        let l = Location::parse("oci:dir").unwrap();
        assert_eq!(
            (l.transport, l.path.as_str(), l.reference),
            (Some(Format::OCI), "dir", None)
        );
        let l = Location::parse("./some:path").unwrap();
        assert_eq!((l.transport, l.path.as_str()), (None, "./some:path"));
        assert_eq!(Location::parse("-").unwrap().path, "-");
    }

    #[test]
    fn unknown_transports_are_usage_errors() {
        for s in [
            "docker:busybox",
            "containers-storage:busybox",
            "foo:bar",
            "oci:",
        ] {
            let err = Location::parse(s).unwrap_err();
            assert!(err.is_usage(), "{s}: {err}");
        }
        let err = Location::parse("docker:busybox").unwrap_err().to_string();
        assert!(err.contains("docker://busybox"), "{err}");
        let err = Location::parse("foo:bar").unwrap_err().to_string();
        assert!(
            err.contains("docker") && err.contains("oci-archive"),
            "{err}"
        );
    }
}
