//! Sources and destinations as the command line gives them: a path, `-` (stdin or
//! stdout), or `TRANSPORT:PATH[:REF]` in skopeo's syntax.

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::{self, transport_names, Format, ReadOptions, Source};
use crate::text::shown;

/// A source or destination as given on the command line: a path, `-`, or
/// `TRANSPORT:PATH[:REF]` in skopeo's syntax.
///
/// ```
/// use dockhand::{Format, Location};
///
/// let stdin = Location::parse("-")?;
/// assert_eq!((stdin.transport, stdin.path.as_str(), stdin.reference), (None, "-", None));
/// let dir = Location::parse("dir:/tmp/image")?;
/// assert_eq!((dir.transport, dir.path.as_str()), (Some(Format::DIR), "/tmp/image"));
/// # Ok::<(), dockhand::Error>(())
/// ```
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
    ("docker", "a registry, written docker://HOST/REPO:TAG"),
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
    /// assert!(Location::parse("containers-storage:busybox:latest").unwrap_err().is_usage());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Location> {
        if crate::registry::is_registry(s) {
            // Checked whole now (a port out of range, credentials inside it), so that
            // nothing is created or read for a reference that cannot be used.
            let text = s.strip_prefix(crate::registry::PREFIX).unwrap_or(s);
            crate::registry::RegistryRef::parse(text, true)?;
            return Ok(Location {
                transport: Some(Format::REGISTRY),
                path: s.to_string(),
                reference: None,
            });
        }
        // docker-daemon: hook. A tagged name is the reference, which names the output.
        if let Some(text) = s.strip_prefix(crate::daemon::PREFIX) {
            let reference = crate::daemon::parse_reference(text, false)?;
            return Ok(Location {
                transport: Some(Format::DOCKER_DAEMON),
                path: s.to_string(),
                reference: reference.tagged_name(),
            });
        }
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
                    "{}: dockhand does not support the transport {prefix:?}; it reads and writes {} and registries (docker://HOST/REPO:TAG){hint}",
                    shown(s),
                    transport_names()
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

/// Open and read the source `location` names: its path, in the format its transport
/// prefix or `options.format` names, or the one detected. Only metadata is read; layers
/// are read, verified, when they are written or opened.
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
    let options = ReadOptions {
        platform: options.platform.clone(),
        format: options.format.or(location.transport),
        spool_dir: options.spool_dir.clone(),
        registry: options.registry.clone(),
        all_platforms: options.all_platforms,
    };
    formats::open(&location.path, &options)
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
            "containers-storage:busybox:latest",
            "foo:bar",
            "oci:",
        ] {
            let err = Location::parse(s).unwrap_err();
            assert!(err.is_usage(), "{s}: {err}");
        }
        let err = Location::parse("docker:busybox").unwrap_err().to_string();
        assert!(
            err.contains("registry") && err.contains("oci-archive"),
            "{err}"
        );
    }
}
