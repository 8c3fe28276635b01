//! `docker-daemon:` — images in a Docker daemon's store (or podman's, through its
//! Docker-compatible service), in skopeo's syntax: `docker-daemon:NAME[:TAG]`,
//! `docker-daemon:NAME@DIGEST` and `docker-daemon:sha256:ID` as sources,
//! `docker-daemon:NAME:TAG` as a destination.
//!
//! A source is the daemon's `docker save` stream, read exactly as a piped archive is
//! (spooled once, indexed in the same pass); a destination is a docker-archive written
//! straight into the body of a load request, which only a committed sink ends.

mod engine;
pub(crate) mod problem;
pub use problem::{DaemonError, DaemonProblem};
mod sink;

use std::fmt;

use crate::container::open_stream_spooling_in;
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::reference::Reference;
use crate::sink::{ImageSink, LayerPolicy};
use crate::text::shown;
use crate::transport::{Format, Location, ReadOptions, SinkOptions, Source, Transport};

pub(crate) use engine::STREAM_TIMEOUT;

/// The transport prefix.
pub(crate) const PREFIX: &str = "docker-daemon:";

/// An image in a daemon, as `docker-daemon:REF` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DaemonRef {
    /// `sha256:<64 hex>`: an image ID (a source only).
    Id(Digest),
    /// A name: what is sent to the daemon (as written, `:latest` added to a bare
    /// name), and the reference when it is a tag rather than a digest.
    Named {
        /// The name as the daemon is asked for it.
        text: String,
        /// The tagged reference; `None` for `NAME@DIGEST`.
        tagged: Option<Reference>,
    },
}

impl DaemonRef {
    /// The name a destination writes the image under, for a tagged reference.
    pub(crate) fn tagged_name(&self) -> Option<String> {
        match self {
            DaemonRef::Named {
                text,
                tagged: Some(_),
            } => Some(text.clone()),
            _ => None,
        }
    }

    /// How the daemon is asked for the image.
    fn daemon_name(&self) -> String {
        match self {
            DaemonRef::Id(digest) => digest.to_string(),
            DaemonRef::Named { text, .. } => text.clone(),
        }
    }
}

impl fmt::Display for DaemonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shown(&self.daemon_name()))
    }
}

/// Parse the text after `docker-daemon:` as skopeo does. A destination needs
/// `NAME:TAG`: the daemon stores the image under that tag.
pub(crate) fn parse_reference(text: &str, destination: bool) -> Result<DaemonRef> {
    let usage = |why: &str| Error::Usage(format!("{PREFIX}{}: {why}", shown(text)));
    if text.is_empty() {
        return Err(usage("name an image: NAME[:TAG], NAME@DIGEST or sha256:ID"));
    }
    if let Some(hex) = text.strip_prefix("sha256:") {
        let Some(id) = Digest::from_hex(hex) else {
            return Err(usage(
                "an image ID is sha256: and 64 lowercase hex digits (a shortened ID is ambiguous)",
            ));
        };
        if destination {
            return Err(usage(
                "a destination is a name with a tag (NAME:TAG), not an image ID: the daemon stores the image under that tag",
            ));
        }
        return Ok(DaemonRef::Id(id));
    }
    if Digest::from_hex(text).is_some() {
        return Err(usage("write an image ID as sha256:ID"));
    }
    if let Some((name, digest)) = text.split_once('@') {
        Digest::parse(digest).map_err(|e| usage(&e))?;
        if name
            .rfind(':')
            .is_some_and(|i| !name[i + 1..].contains('/'))
        {
            return Err(usage(
                "a reference with both a tag and a digest is not supported",
            ));
        }
        Reference::parse_why(name).map_err(usage)?;
        if destination {
            return Err(usage(
                "a destination is a name with a tag (NAME:TAG), not a digest: the daemon stores the image under that tag",
            ));
        }
        return Ok(DaemonRef::Named {
            text: text.to_string(),
            tagged: None,
        });
    }
    let reference = Reference::parse_why(text).map_err(usage)?;
    if reference.familiar_repository() == "sha256" {
        return Err(usage(
            "the name sha256 is reserved for image IDs (sha256:<64 hex digits>)",
        ));
    }
    let has_tag = text
        .rfind(':')
        .is_some_and(|i| !text[i + 1..].contains('/'));
    if !has_tag && destination {
        return Err(usage(
            "a destination needs a tag (NAME:TAG): the daemon stores the image under it",
        ));
    }
    let text = if has_tag {
        text.to_string()
    } else {
        format!("{text}:latest")
    };
    Ok(DaemonRef::Named {
        text,
        tagged: Some(reference),
    })
}

/// Read the image `reference` names from the daemon `DOCKER_HOST` names: its save
/// stream, spooled and read like a piped archive. It must hold that one image (by ID:
/// that ID); a tagged reference names it, whatever the archive says (by ID or digest,
/// the archive's names are kept: usually none).
fn open_source(reference: &DaemonRef, options: &ReadOptions) -> Result<Source> {
    let input = format!("{PREFIX}{}", reference.daemon_name());
    let engine = engine::Engine::connect()?;
    let name = reference.daemon_name();
    let path = format!("/images/{}/get", escape_path(&name));
    let mut answer = engine
        .request("GET", &path, STREAM_TIMEOUT)?
        .finish_request()?;
    if answer.status != 200 {
        return Err(engine.refused(&mut answer, Some(&name)));
    }
    let tree = open_stream_spooling_in(answer, &input, options.spool_dir.as_deref())
        .map_err(|e| e.in_input(&input))?;
    let options = ReadOptions {
        format: None,
        ..options.clone()
    };
    let mut source =
        crate::formats::read_tree(tree.tree, &options).map_err(|e| e.in_input(&input))?;
    source.format = Format::DOCKER_DAEMON;
    // The user's reference decides what was read and what it is called, not the
    // daemon's archive: one image, the ID asked for, named by the tag asked for.
    let unexpected = |what: String| engine.error(Some(&name), DaemonProblem::Protocol(what));
    let [image] = source.images.as_mut_slice() else {
        return Err(unexpected(format!(
            "its save of one image holds {} images",
            source.images.len()
        )));
    };
    match reference {
        DaemonRef::Id(id) if image.config.digest != *id => {
            return Err(unexpected(format!(
                "it saved the image {} when asked for {id}",
                image.config.digest
            )));
        }
        DaemonRef::Named {
            tagged: Some(tagged),
            ..
        } => {
            image.tags = vec![tagged.clone()];
            image.ref_names.clear();
            image.oci_ref_names.clear();
        }
        _ => {}
    }
    Ok(source)
}

/// The `docker-daemon:` transport: the image store of a Docker daemon, or of podman's
/// Docker-compatible service, at `DOCKER_HOST`.
pub(crate) struct DaemonTransport;

/// The row of the transport table.
pub(crate) static DOCKER_DAEMON: DaemonTransport = DaemonTransport;

impl Format {
    /// A Docker daemon's image store (`docker-daemon:NAME:TAG`), or podman's through
    /// its Docker-compatible service, at `DOCKER_HOST`.
    pub const DOCKER_DAEMON: Format = Format::of(&DOCKER_DAEMON);
}

impl Transport for DaemonTransport {
    fn name(&self) -> &'static str {
        "docker-daemon"
    }
    fn noun(&self) -> &'static str {
        "a Docker daemon"
    }
    fn syntax(&self) -> &'static str {
        "docker-daemon:NAME[:TAG]"
    }
    /// skopeo's `NAME[:TAG]`, `NAME@DIGEST` or `sha256:ID`, checked now. The whole is
    /// the place, not a reference: a source is what the daemon saves under that name
    /// (podman may call it `localhost/NAME`), and a destination names its image itself.
    fn parse(&self, rest: &str) -> Result<(String, Option<String>)> {
        parse_reference(rest, false)?;
        Ok((rest.to_string(), None))
    }
    fn holds_many(&self) -> bool {
        false
    }
    fn writes_in_order(&self) -> bool {
        true
    }
    fn open_source(&self, location: &Location, options: &ReadOptions) -> Result<Source> {
        open_source(&parse_reference(&location.path, false)?, options)
    }
    fn create_sink(
        &self,
        location: &Location,
        options: &SinkOptions,
    ) -> Result<ImageSink<'static>> {
        create_sink(&parse_reference(&location.path, true)?, options)
    }
}

/// A sink loading what is written into the daemon `DOCKER_HOST` names, under
/// `reference` (a `NAME:TAG`). Nothing is loaded unless it is committed.
fn create_sink(reference: &DaemonRef, options: &SinkOptions) -> Result<ImageSink<'static>> {
    if options.write.docker_layout.is_some()
        || options.write.layer_compression.target().is_some()
        || options.write.compression_level.is_some()
        || options.write.manifest_format.is_some()
    {
        return Err(Error::Usage(format!(
            "{PREFIX} loads a docker-archive with uncompressed layers in the legacy layout; layout, compression and manifest format options do not apply"
        )));
    }
    let Some(name) = reference.tagged_name() else {
        return Err(Error::Usage(format!(
            "{PREFIX}{reference}: a destination is a name with a tag (NAME:TAG)"
        )));
    };
    let destination = sink::DaemonDestination::start(name)?;
    Ok(ImageSink::new(
        Box::new(destination),
        LayerPolicy::UNCOMPRESSED,
    ))
}

/// `name` for a URL path: the characters of references kept, anything else
/// percent-encoded.
fn escape_path(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_skopeo_reads_them() {
        let id = format!("sha256:{}", "ab".repeat(32));
        assert!(matches!(
            parse_reference(&id, false).unwrap(),
            DaemonRef::Id(_)
        ));
        let named = parse_reference("busybox", false).unwrap();
        assert_eq!(named.daemon_name(), "busybox:latest");
        assert_eq!(named.tagged_name().as_deref(), Some("busybox:latest"));
        let tagged = parse_reference("quay.io/a/b:1.0", true).unwrap();
        assert_eq!(tagged.daemon_name(), "quay.io/a/b:1.0");
        let digested = parse_reference(&format!("a/b@{id}"), false).unwrap();
        assert_eq!(digested.tagged_name(), None);
        for (text, destination, why) in [
            ("", false, "name an image"),
            ("sha256:abc", false, "shortened ID"),
            (&id, true, "not an image ID"),
            (&"ab".repeat(32), false, "sha256:ID"),
            (&format!("a/b@{id}"), true, "not a digest"),
            (&format!("a/b:1@{id}"), false, "both a tag and a digest"),
            ("a/b@sha256:12", false, "invalid digest"),
            ("busybox", true, "needs a tag"),
            ("a/Upper", false, "lowercase"),
            ("sha256:", false, "shortened ID"),
        ] {
            let err = parse_reference(text, destination).unwrap_err();
            assert!(err.is_usage(), "{text}: {err}");
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn names_are_escaped_for_the_path() {
        assert_eq!(escape_path("quay.io/a/b:1.0"), "quay.io/a/b:1.0");
        assert_eq!(escape_path("a b?c#"), "a%20b%3Fc%23");
    }

    #[test]
    fn errors_say_where_and_what_to_do() {
        let error = |problem| DaemonError {
            address: "unix:///run/x.sock".into(),
            image: Some("a:1".into()),
            problem,
        };
        let text = error(DaemonProblem::NotRunning).to_string();
        assert!(
            text.contains("unix:///run/x.sock") && text.contains("DOCKER_HOST"),
            "{text}"
        );
        let text = error(DaemonProblem::PermissionDenied).to_string();
        assert!(text.contains("permission denied"), "{text}");
        let text = error(DaemonProblem::NoSuchImage {
            message: "No such image:\na:1".into(),
        })
        .to_string();
        assert_eq!(
            text,
            "the Docker daemon at unix:///run/x.sock has no image a:1 (No such image:\\na:1)"
        );
    }
}
