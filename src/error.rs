//! The library's error type: one variant per kind of failure a user must be told about.

use std::io;
use std::sync::Arc;

use crate::model::digest::Digest;

/// Result alias used throughout the library.
///
/// ```
/// fn first_tag(input: &str) -> dockhand::Result<String> {
///     let location = dockhand::Location::parse(input)?;
///     let source = dockhand::open_source(&location, &Default::default())?;
///     Ok(source.images[0].display_name())
/// }
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// assert_eq!(first_tag(input).unwrap(), "docker.io/dockhand-fixture/basic:1.0");
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an input may be, for messages about one that is none of it.
pub(crate) const WHAT_DOCKHAND_READS: &str = "dockhand reads docker save and OCI archives \
     (tar files, also gzip, zstd, xz or bzip2-compressed), image layout directories \
     (OCI, docker save, dir:) and docker:// registries";

/// Everything that can go wrong while reading, verifying or writing an image.
///
/// Every message names the file (inside the archive or on disk) and the problem, so that
/// the command-line tool can print it on one line.
///
/// ```
/// use dockhand::{open_source, Error, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/broken-not-image/input.tar");
/// let err = open_source(&Location::parse(input)?, &ReadOptions::default()).unwrap_err();
/// assert_eq!(err.input(), Some(input));
/// assert!(matches!(err.without_input(), Error::NotAnImage { .. }));
/// assert!(!err.is_usage());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with what was being done. The cause is part of
    /// the message and not a separate `source()`, so a chain printer names it once.
    #[error("{}: {cause}", worded(.context))]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error (shared, so that an error can be kept and handed out
        /// again, as the readers do for a document referenced many times).
        cause: Arc<io::Error>,
    },
    /// The input is malformed: bad JSON, a field of the wrong shape, an unsafe path.
    #[error("{}{problem}", at(.file))]
    Malformed {
        /// The file (path inside the archive or layout) at fault.
        file: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A layer cannot be applied to the layers below it (exporting an image's
    /// filesystem): its tar is malformed, or an entry is named outside the root, is a
    /// whiteout of no nameable file, a hard link to what its layer cannot reach, or
    /// goes over a limit.
    ///
    /// ```
    /// use dockhand::Error;
    ///
    /// let err = Error::BadLayer {
    ///     image: "example.com/app:1".into(),
    ///     layer: 2,
    ///     path: "blobs/sha256/ab12".into(),
    ///     entry: Some("etc/.wh...".into()),
    ///     problem: "a whiteout of `..`".into(),
    /// };
    /// assert_eq!(
    ///     err.to_string(),
    ///     "image example.com/app:1: layer 2 (blobs/sha256/ab12): entry etc/.wh...: a whiteout of `..`"
    /// );
    /// ```
    #[error("image {image}: layer {layer} ({path}): {}{problem}", .entry.as_ref().map(|e| format!("entry {e}: ")).unwrap_or_default())]
    BadLayer {
        /// The image, as messages name it.
        image: String,
        /// The layer's position, from 1 (the base).
        layer: usize,
        /// The layer's path in its source, escaped.
        path: String,
        /// The entry at fault (its name as stored, escaped), when one is.
        entry: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// A file the image needs is absent.
    #[error("{file}: {what} is missing")]
    Missing {
        /// The path that was looked for.
        file: String,
        /// What it should have held (a layer, a config, a manifest blob ...).
        what: String,
    },
    /// A blob's content does not hash to the digest it is stored under or referenced by.
    #[error("{file}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob's path.
        file: String,
        /// The digest the metadata promised.
        expected: Digest,
        /// The digest of the bytes actually read.
        actual: Digest,
    },
    /// A blob's length differs from the size its descriptor gives.
    #[error("{file}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's path.
        file: String,
        /// The size the metadata promised.
        expected: u64,
        /// The number of bytes actually read.
        actual: u64,
    },
    /// A layer's uncompressed content does not match the config's `rootfs.diff_ids` entry.
    #[error("image {image}: layer {file}: diff_id mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        /// The image (tag or config digest).
        image: String,
        /// The layer's path.
        file: String,
        /// The diff_id listed in the config.
        expected: Digest,
        /// The sha256 of the uncompressed bytes.
        actual: Digest,
    },
    /// The archive ends before an entry's data does.
    #[error("{}truncated archive: {detail}", at(.file))]
    Truncated {
        /// The archive.
        file: String,
        /// Which entry was cut short.
        detail: String,
    },
    /// The input is readable but holds no image in any format dockhand knows.
    #[error("{}not an image: {reason}", at(.file))]
    NotAnImage {
        /// The input.
        file: String,
        /// Why it is not recognised, with the likely cause.
        reason: String,
    },
    /// The requested images cannot be selected (no match, or an ambiguous choice).
    #[error("{}", worded(.0))]
    Selection(String),
    /// A selector picked no image (or an ID prefix picked several): `message` says
    /// which and lists what the source holds; `input` is that source as named
    /// (`stdin` for a pipe), so that a caller can say how to list it.
    #[error("{}", worded(.message))]
    Unselected {
        /// What was asked and what the source holds.
        message: String,
        /// The source the images come from.
        input: String,
    },
    /// The request is valid but dockhand cannot carry it out.
    #[error("{}", worded(.0))]
    Unsupported(String),
    /// What is attached to an image (its signatures, attestations, SBOMs) names its
    /// manifest by digest, and that manifest changes when written (layers compressed
    /// anew, another manifest format): it cannot follow. Nothing was put.
    #[error("{}", cannot_follow(.subject, .image.as_deref()))]
    ReferrersCannotFollow {
        /// The digest the referrers name.
        subject: Digest,
        /// The image whose manifest it is, as messages name it, when one is.
        image: Option<String>,
    },
    /// The command line is wrong whatever the input holds: an invalid option value,
    /// options that contradict each other, an unknown transport. The binary exits 2.
    #[error("{}", worded(.0))]
    Usage(String),
    /// Something appeared at the destination while dockhand was writing a new output,
    /// and nothing was replaced. (A new OCI layout that finds an OCI layout there adds
    /// its images to it instead, as if it had started after that layout existed.)
    ///
    /// ```
    /// use dockhand::Error;
    ///
    /// let err = Error::DestinationAppeared {
    ///     path: "out.tar".into(),
    ///     what: "a file of 5 bytes".into(),
    ///     force_would_replace: true,
    /// };
    /// assert_eq!(
    ///     err.to_string(),
    ///     "out.tar: a file of 5 bytes appeared there while dockhand was writing; \
    ///      nothing was replaced (`force` would replace it)"
    /// );
    /// // A command line names the option by its flag.
    /// assert!(err.naming(|_| "--force").ends_with("(--force would replace it)"));
    /// ```
    #[error(
        "{path}: {what} appeared there while dockhand was writing; nothing was replaced{}",
        if *.force_would_replace { worded(&format!(" ({} would replace it)", Setting::Force)) } else { String::new() }
    )]
    DestinationAppeared {
        /// The destination as given.
        path: String,
        /// What is there now: `a file of 5 bytes`, `a docker-save tree`, `an OCI image
        /// layout (its index.json ...)` that cannot be added to.
        what: String,
        /// `force` was not set and would replace what is there; false when it was
        /// given, or when nothing could replace it (a directory of other files, a FIFO).
        force_would_replace: bool,
    },
    /// The destination is not something dockhand may write (the crate docs' `# Security` section says what it may).
    #[error("refusing to write {path}: {}", worded(.reason))]
    DestinationRefused {
        /// The destination as given.
        path: String,
        /// What is there and why it is kept.
        reason: String,
    },
    /// Nothing can be created where the output goes: no permission, or a read-only
    /// file system. dockhand builds an output beside its destination (and adds to an
    /// OCI layout inside it), so it needs to create files there.
    ///
    /// ```
    /// use dockhand::Error;
    ///
    /// let err = Error::DestinationNotWritable {
    ///     path: "/srv/images/app.tar".into(),
    ///     dir: "/srv/images".into(),
    ///     problem: "no permission to create files".into(),
    /// };
    /// assert_eq!(
    ///     err.to_string(),
    ///     "cannot write /srv/images/app.tar: no permission to create files in /srv/images; \
    ///      choose a destination in a directory you can write to"
    /// );
    /// ```
    #[error("cannot write {path}: {problem} in {dir}; choose a destination in a directory you can write to")]
    DestinationNotWritable {
        /// The destination as given.
        path: String,
        /// The directory where files could not be created.
        dir: String,
        /// What stops it: `no permission to create files`, or `no files can be
        /// created on the read-only file system`.
        problem: String,
    },
    /// Something wrong with one input: which input (as the user named it), and what.
    #[error("{input}: {error}")]
    Input {
        /// The input: a path, or `stdin`.
        input: String,
        /// What is wrong with it.
        error: Box<Error>,
    },
    /// A registry refused a request, answered something the protocol does not allow,
    /// or could not be reached.
    #[error("registry {registry}: {}", worded(.message))]
    Registry {
        /// The registry's host (and port), as the reference names it.
        registry: String,
        /// What went wrong; never a credential or token.
        message: String,
    },
    /// A registry's TLS handshake failed for a reason the user can act on.
    #[error("registry {registry}: {}", worded(&.problem.words(.registry)))]
    Tls {
        /// The registry's host (and port), as the reference names it.
        registry: String,
        /// What failed.
        problem: TlsProblem,
    },
    /// A certificate or key file (of a registry's `certs.d` folder, the cert dir, or
    /// `SSL_CERT_FILE`) could not be read or is malformed.
    #[error("certificate file {file}: {}", worded(.problem))]
    Certificate {
        /// The file (or directory), escaped.
        file: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A Docker daemon (`docker-daemon:`) could not be reached, refused a request, or
    /// reported a failure; the error says where, which image, and what it said.
    #[error("{0}")]
    Daemon(Box<crate::daemon::problem::DaemonError>),
    /// A store (an OCI layout or a docker-save archive) could not be changed in place
    /// as asked: a name it does not hold, a layout that cannot be edited; the error
    /// says which and what to do ([`crate::StoreError`]).
    #[error("{0}")]
    Store(Box<crate::store::StoreError>),
    /// Credentials could not be found or read (a bad `--creds`, an unreadable auth
    /// file, a failing credential helper).
    #[error("credentials: {}", worded(.0))]
    Credentials(String),
    /// The operation was interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
    /// No cosign signature attached to an image verifies with the keys given: which
    /// image, and the most telling reason ([`crate::verify_signatures`]).
    #[error("{0}")]
    Unsigned(Box<crate::signatures::Unsigned>),
    /// Two images of a push would land on the same repository and tag; refused before
    /// anything was pushed.
    ///
    /// ```
    /// use dockhand::Error;
    ///
    /// let err = Error::PushCollision {
    ///     first: "docker.io/team/app:1".into(),
    ///     second: "quay.io/team/app:1".into(),
    ///     target: "mirror.internal/team/app:1".into(),
    ///     scoped_would_help: true,
    /// };
    /// assert!(err.naming(|_| "--image").starts_with(
    ///     "images docker.io/team/app:1 and quay.io/team/app:1 would both be pushed to \
    ///      docker://mirror.internal/team/app:1; nothing was pushed"
    /// ));
    /// ```
    #[error(
        "images {first} and {second} would both be pushed to docker://{target}; nothing was pushed{}",
        if *.scoped_would_help {
            worded(&format!(" (pick one with {}, or keep each source registry in the path with {})", Setting::Image, Setting::Scoped))
        } else {
            worded(&format!(" (pick one with {})", Setting::Image))
        }
    )]
    PushCollision {
        /// The first image, as messages name it.
        first: String,
        /// The other image.
        second: String,
        /// Where both would go: `HOST/REPO:TAG`.
        target: String,
        /// Whether keeping each source registry in the path would set them apart (a
        /// push under a prefix, not yet scoped).
        scoped_would_help: bool,
    },
    /// An image of a push to a registry prefix (`HOST/PREFIX/`) has no place there: no
    /// name at all, or a name that makes no repository path; refused before anything
    /// was pushed.
    #[error("{}", unplaced(.image, .destination, .name.as_deref(), .problem.as_deref()))]
    PushUnplaced {
        /// The image, as messages name it.
        image: String,
        /// The destination: `HOST/PREFIX/`.
        destination: String,
        /// The name that makes no repository path there; `None` when the image has none.
        name: Option<String>,
        /// Why that name makes none.
        problem: Option<String>,
    },
}

/// The words of [`Error::PushUnplaced`].
fn unplaced(image: &str, destination: &str, name: Option<&str>, problem: Option<&str>) -> String {
    let what = match name {
        None => format!(
            "image {image} has no name, so it has no repository under docker://{destination}"
        ),
        Some(name) => format!(
            "image {image}: {name} makes no repository under docker://{destination} ({})",
            problem.unwrap_or("invalid")
        ),
    };
    worded(&format!(
        "{what}; nothing was pushed: name it in the source (a tag in a docker-save archive, \
         a ref name in an OCI layout) or with {}, leave it out with {}, or push it alone \
         to docker://HOST/REPO:TAG",
        Setting::Tag,
        Setting::Image
    ))
}

/// Why a TLS handshake with a registry failed, in terms a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The registry answered in plain HTTP (rustls: `InvalidContentType`).
    PlainHttp,
    /// Its certificate's issuer is not trusted here.
    UnknownIssuer,
    /// It presents a CA certificate as its own.
    CaUsedAsLeaf,
    /// Its certificate names a trusted CA as issuer but that CA did not sign it
    /// (another CA of the same name, or one since replaced).
    BadSignature,
    /// Its certificate is for other names.
    WrongName {
        /// The name it was reached by.
        expected: String,
        /// The names its certificate lists (may be empty).
        presented: Vec<String>,
    },
    /// Its certificate has expired.
    Expired {
        /// When it expired, as an HTTP date, when known.
        not_after: Option<String>,
    },
    /// Its certificate is not valid yet.
    NotYetValid,
    /// It asks for a client certificate and none was given.
    ClientCertRequired,
    /// It refused the client certificate given.
    ClientCertRefused {
        /// The certificate file presented, escaped.
        cert: String,
    },
    /// Another TLS failure, as rustls words it.
    Other(String),
}

impl TlsProblem {
    /// The words for `registry` (escaped), with settings marked.
    fn words(&self, registry: &str) -> String {
        let skip = format!("or add {}=false to skip the check", Setting::TlsVerify);
        let ca_places = format!(
            "put that CA's certificate in /etc/docker/certs.d/{registry}/ca.crt \
             (or /etc/containers/certs.d/{registry}/ca.crt) or in a directory given as {}",
            Setting::CertDir
        );
        match self {
            TlsProblem::PlainHttp => format!(
                "it speaks plain HTTP, not HTTPS; add {}=false to use plain HTTP",
                Setting::TlsVerify
            ),
            TlsProblem::UnknownIssuer => format!(
                "its certificate is signed by a CA this machine does not trust: {ca_places}, {skip}"
            ),
            TlsProblem::BadSignature => format!(
                "its certificate names a CA this machine trusts as its issuer, but that CA \
                 did not sign it (another CA with the same name, or one since replaced): \
                 trust the CA that did: {ca_places}, {skip}"
            ),
            TlsProblem::CaUsedAsLeaf => format!(
                "it presents a CA certificate as its own: give the registry a certificate \
                 issued by that CA for its name (and trust the CA: {ca_places}), {skip}"
            ),
            TlsProblem::WrongName {
                expected,
                presented,
            } => {
                let names = if presented.is_empty() {
                    "no name".to_string()
                } else {
                    presented.join(", ")
                };
                format!(
                    "its certificate is for {names}, not for {expected}: reach it by a name \
                     its certificate lists, {skip}"
                )
            }
            TlsProblem::Expired { not_after } => {
                let when = not_after
                    .as_ref()
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default();
                format!(
                    "its certificate expired{when}: the registry needs a renewed certificate \
                     (or this machine's clock is wrong), {skip}"
                )
            }
            TlsProblem::NotYetValid => {
                format!("its certificate is not valid yet: check this machine's clock, {skip}")
            }
            TlsProblem::ClientCertRequired => format!(
                "it asks for a client certificate: put NAME.cert and NAME.key in \
                 /etc/docker/certs.d/{registry}/ (or /etc/containers/certs.d/{registry}/) or \
                 in a directory given as {}",
                Setting::CertDir
            ),
            TlsProblem::ClientCertRefused { cert } => format!(
                "it refused the client certificate {cert}: the registry trusts another CA \
                 for its clients"
            ),
            TlsProblem::Other(text) => format!("TLS failed: {text}; {skip}"),
        }
    }
}

/// An option of the library's that a message refers to (a field of
/// [`crate::ConvertOptions`], [`crate::ReadOptions`] or [`crate::RegistryOptions`]).
/// Messages name it by its option name; a caller with names of its own (the command
/// line's flags) shows them with [`Error::naming`].
///
/// ```
/// use dockhand::{convert, ConvertOptions, Setting};
///
/// let platform = dockhand::Platform::parse("linux/arm64").ok();
/// let options = ConvertOptions { all_platforms: true, platform, ..Default::default() };
/// let err = convert("in.tar", "out", &options).unwrap_err();
/// assert!(err.to_string().contains("`all_platforms`"), "{err}");
/// let flags = |s: Setting| if s == Setting::AllPlatforms { "--all" } else { "--platform" };
/// assert!(err.naming(flags).contains("--all takes every platform"), "{err}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// Replace an existing destination (`ConvertOptions::force`).
    Force,
    /// The images to take (`ConvertOptions::images`).
    Image,
    /// Names for the output image (`ConvertOptions::tags`).
    Tag,
    /// The platform to pick (`platform`).
    Platform,
    /// Every platform of an index (`all_platforms`).
    AllPlatforms,
    /// The format to read (`ConvertOptions::from`).
    From,
    /// The format to write (`ConvertOptions::to`).
    To,
    /// The docker-archive shape (`docker_layout`).
    DockerLayout,
    /// What is done with layers (`layer_compression`).
    LayerCompression,
    /// The compression level (`compression_level`).
    CompressionLevel,
    /// Registry credentials (`RegistryOptions::creds`).
    Creds,
    /// The auth file (`RegistryOptions::authfile`).
    Authfile,
    /// The blob cache (`RegistryOptions::cache`).
    Cache,
    /// No blob cache (`RegistryOptions::no_cache`).
    NoCache,
    /// Retries (`RegistryOptions::retry_times`).
    RetryTimes,
    /// Certificate checks (`RegistryOptions::tls_verify`).
    TlsVerify,
    /// The directory of a registry's certificates (`RegistryOptions::cert_dir`).
    CertDir,
    /// The manifest format to write (`WriteOptions::manifest_format`).
    ManifestFormat,
    /// The file the written manifest's digest goes to (`ConvertOptions::digest_file`).
    DigestFile,
    /// Carry what is attached to the images (`ConvertOptions::referrers`).
    Referrers,
    /// The artifact types of referrers carried (`ConvertOptions::referrer_types`).
    ReferrerTypes,
    /// Keep each image's source registry in its path when pushing to a registry
    /// prefix (`RegistryOptions::scoped`).
    Scoped,
    /// A change to an image config (`ImageEdit::changes`).
    Change,
    /// Annotations of an edited image's manifest (`ImageEdit::annotations`).
    Annotation,
    /// Annotations of the index edited images are written in
    /// (`ImageEdit::index_annotations`).
    IndexAnnotation,
}

/// Every setting, in the order of their marks.
const SETTINGS: [Setting; 25] = [
    Setting::Force,
    Setting::Image,
    Setting::Tag,
    Setting::Platform,
    Setting::AllPlatforms,
    Setting::From,
    Setting::To,
    Setting::DockerLayout,
    Setting::LayerCompression,
    Setting::CompressionLevel,
    Setting::Creds,
    Setting::Authfile,
    Setting::Cache,
    Setting::NoCache,
    Setting::RetryTimes,
    Setting::TlsVerify,
    Setting::CertDir,
    Setting::ManifestFormat,
    Setting::DigestFile,
    Setting::Referrers,
    Setting::ReferrerTypes,
    Setting::Scoped,
    Setting::Change,
    Setting::Annotation,
    Setting::IndexAnnotation,
];

impl Setting {
    /// Its name in the library's option structs.
    pub fn option_name(self) -> &'static str {
        match self {
            Setting::Force => "force",
            Setting::Image => "images",
            Setting::Tag => "tags",
            Setting::Platform => "platform",
            Setting::AllPlatforms => "all_platforms",
            Setting::From => "from",
            Setting::To => "to",
            Setting::DockerLayout => "docker_layout",
            Setting::LayerCompression => "layer_compression",
            Setting::CompressionLevel => "compression_level",
            Setting::Creds => "creds",
            Setting::Authfile => "authfile",
            Setting::Cache => "cache",
            Setting::NoCache => "no_cache",
            Setting::RetryTimes => "retry_times",
            Setting::TlsVerify => "tls_verify",
            Setting::CertDir => "cert_dir",
            Setting::ManifestFormat => "manifest_format",
            Setting::DigestFile => "digest_file",
            Setting::Referrers => "referrers",
            Setting::ReferrerTypes => "referrer_types",
            Setting::Scoped => "scoped",
            Setting::Change => "changes",
            Setting::Annotation => "annotations",
            Setting::IndexAnnotation => "index_annotations",
        }
    }
}

/// In a message, a mark that the message's display replaces by the setting's name:
/// two control characters around its number, which no text from an input can carry
/// (every such text is escaped, [`crate::text::shown`]).
impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = SETTINGS.iter().position(|s| s == self).unwrap_or(0);
        write!(f, "\u{1}{n}\u{2}")
    }
}

/// How a caller names settings (a command line: by its flags).
type Namer = fn(Setting) -> &'static str;

thread_local! {
    /// The names [`Error::naming`] shows settings by, while it words an error.
    static NAMES: std::cell::Cell<Option<Namer>> = const { std::cell::Cell::new(None) };
}

/// `text` with every setting's mark replaced by its name: the caller's, within
/// [`Error::naming`], else the option's name in backticks.
fn worded(text: &str) -> String {
    if !text.contains('\u{1}') {
        return text.to_string();
    }
    let names = NAMES.with(|n| n.get());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('\u{1}') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('\u{2}') else {
            rest = after;
            continue;
        };
        if let Some(setting) = after[..end]
            .parse::<usize>()
            .ok()
            .and_then(|n| SETTINGS.get(n))
        {
            match names {
                Some(name) => out.push_str(name(*setting)),
                None => {
                    out.push('`');
                    out.push_str(setting.option_name());
                    out.push('`');
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

impl Error {
    /// The message, with every option it mentions named by `name` (a command line's
    /// flags, say) instead of its name in the library.
    pub fn naming(&self, name: Namer) -> String {
        let previous = NAMES.with(|n| n.replace(Some(name)));
        let text = self.to_string();
        NAMES.with(|n| n.set(previous));
        text
    }

    /// A [`Error::Malformed`] for `file`.
    pub fn malformed(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Malformed {
            file: file.into(),
            problem: problem.into(),
        }
    }

    /// Wrap an I/O error with context. If the I/O error carries one of ours (a verifying
    /// reader reports mismatches through `io::Error`), that error is returned unchanged.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        match into_inner(source) {
            Ok(ours) => ours,
            Err(source) => {
                if source.kind() == io::ErrorKind::UnexpectedEof {
                    return Error::Truncated {
                        file: context.into(),
                        detail: "unexpected end of data".into(),
                    };
                }
                Error::Io {
                    context: context.into(),
                    cause: Arc::new(source),
                }
            }
        }
    }

    /// The error for a failure to create something of the output for the destination
    /// `dest` in the directory `dir`: no permission or a read-only file system is
    /// [`Error::DestinationNotWritable`], which says what to do; anything else an
    /// [`Error::Io`] with `context`.
    pub(crate) fn creating_output(
        dest: &str,
        dir: &std::path::Path,
        context: impl FnOnce() -> String,
        cause: io::Error,
    ) -> Self {
        let problem = match cause.kind() {
            io::ErrorKind::PermissionDenied => "no permission to create files",
            io::ErrorKind::ReadOnlyFilesystem => {
                "no files can be created on the read-only file system"
            }
            _ => return Error::io(context(), cause),
        };
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        Error::DestinationNotWritable {
            path: crate::text::shown(dest),
            dir: crate::text::shown(&dir.display().to_string()),
            problem: problem.into(),
        }
    }

    /// Turn this error into an `io::Error` so it can travel through `Read`/`Write` impls.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// This error as one about `input` (wrapped once; a usage error stays as it is).
    pub fn in_input(self, input: &str) -> Error {
        match self {
            Error::Input { .. } | Error::Usage(_) | Error::Interrupted => self,
            other => Error::Input {
                input: input.to_string(),
                error: Box::new(other),
            },
        }
    }

    /// What went wrong, without which input it concerns.
    pub fn without_input(&self) -> &Error {
        match self {
            Error::Input { error, .. } => error.without_input(),
            other => other,
        }
    }

    /// The input this error concerns, when it concerns one.
    pub fn input(&self) -> Option<&str> {
        match self {
            Error::Input { input, .. } => Some(input),
            _ => None,
        }
    }

    /// True when the root cause is a closed pipe on the output side.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io { cause, .. } => cause.kind() == io::ErrorKind::BrokenPipe,
            Error::Input { error, .. } => error.is_broken_pipe(),
            _ => false,
        }
    }

    /// For an [`Error::Unselected`] (within [`Error::Input`] too), the source whose
    /// images a caller could list.
    pub fn unselected_input(&self) -> Option<&str> {
        match self {
            Error::Unselected { input, .. } => Some(input),
            Error::Input { error, .. } => error.unselected_input(),
            _ => None,
        }
    }

    /// Whether this is a usage error (exit code 2 on the command line).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage(_) => true,
            Error::Input { error, .. } => error.is_usage(),
            _ => false,
        }
    }
}

/// The words of [`Error::ReferrersCannotFollow`].
fn cannot_follow(subject: &Digest, image: Option<&str>) -> String {
    let image = image.map(|i| format!("image {i}: ")).unwrap_or_default();
    worded(&format!(
        "{image}the manifest {subject} changes when written here (its layers or its format \
         change), so what refers to it by digest (signatures, attestations, SBOMs) cannot \
         follow; keep its layers and format as they are, or drop {}",
        Setting::Referrers
    ))
}

/// `file: ` before a message about a file, nothing before one about the whole input.
fn at(file: &str) -> String {
    if file.is_empty() {
        String::new()
    } else {
        format!("{file}: ")
    }
}

/// Recover an [`Error`] that was smuggled through an `io::Error`.
fn into_inner(e: io::Error) -> Result<Error, io::Error> {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return Ok(*inner.downcast::<Error>().expect("checked above"));
    }
    Err(e)
}

/// Extension to attach context to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Map the error with [`Error::io`].
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
