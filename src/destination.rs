//! What dockhand may do to a destination path, decided before anything is written.
//!
//! A converter runs in scripts with variables in its arguments, so a mistyped
//! destination must never cost anything. The rules:
//!
//! - Refused in every case, whatever they hold: `/`, the current directory and its
//!   parents, `$HOME` and its parents, the source itself, a directory that contains
//!   the source, and any path inside a source directory.
//! - Nothing there: it is created.
//! - A directory output goes into an empty directory, or replaces (with `--force`) a
//!   directory that is recognisably an image layout dockhand reads (OCI layout,
//!   docker-save tree, `dir:` layout) and holds nothing else. Without `--force`, an
//!   OCI output adds its images to an existing OCI layout, as skopeo's `oci:DIR:REF`
//!   does. Anything else there (a README beside a layout, other files or folders) is
//!   refused, with or without `--force`.
//! - Something that appears at the destination while a new output is written is kept
//!   ([`appeared`]), except that a new OCI layout adds its images to an OCI layout that
//!   appeared there (runs creating one layout at once all land).
//! - A file output replaces (with `--force`) a regular file or a symlink (the link
//!   itself, never what it points to). A directory, FIFO, socket or device node is
//!   never replaced.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cleanup::STAGING_MARKER;
use crate::error::Setting;
use crate::error::{Error, Result};
use crate::text::shown;

/// What is about to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A single tar file.
    File,
    /// A directory tree; `appendable` when images can be added to an existing layout
    /// of its kind (an OCI layout).
    Directory {
        /// True when an existing OCI layout is added to rather than refused.
        appendable: bool,
    },
}

/// How the destination will be written.
///
/// ```
/// use dockhand::{create_sink, Format, Plan, SinkOptions};
/// # let tmp = tempfile::tempdir().unwrap();
///
/// let (new, empty) = (tmp.path().join("new"), tmp.path().join("empty"));
/// std::fs::create_dir(&empty).unwrap();
/// let plan = |dst: &std::path::Path| {
///     create_sink(dst.to_str().unwrap(), Format::OCI, &SinkOptions::default()).map(|s| s.plan())
/// };
/// assert_eq!(plan(&new)?, Some(Plan::Create));
/// assert_eq!(plan(&empty)?, Some(Plan::FillEmpty));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// Nothing is there: create it, failing if something appears meanwhile.
    Create,
    /// An empty directory is there: put the output in its place.
    FillEmpty,
    /// Replace what is there, which is something dockhand could have written.
    Replace,
    /// Add the images to the OCI layout there, keeping what it holds.
    AddToOciLayout,
}

/// The kinds of image layout a directory can be recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// An OCI image layout and nothing else.
    Oci,
    /// A docker-save tree (classic, or the Docker >= 25 hybrid with an OCI layout).
    DockerSave,
    /// A containers/image `dir:` layout.
    Dir,
}

impl LayoutKind {
    fn describe(self) -> &'static str {
        match self {
            LayoutKind::Oci => "an OCI image layout",
            LayoutKind::DockerSave => "a docker-save tree",
            LayoutKind::Dir => "a dir: layout",
        }
    }
}

/// What an existing directory holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// Nothing.
    Empty,
    /// An image layout and nothing but what such a layout holds.
    Layout(LayoutKind),
    /// Something else; the text says what and why it is not a layout.
    Foreign(String),
}

/// Decide how `dest` may be written with `output`, or refuse with one line saying what
/// is there and why it is kept. `source` is the input's path (`None` for stdin).
pub fn plan(dest: &Path, output: Output, force: bool, source: Option<&Path>) -> Result<Plan> {
    let shown_dest = shown(&dest.to_string_lossy());
    let refuse = |reason: String| Error::DestinationRefused {
        path: shown_dest.clone(),
        reason,
    };
    let absolute = absolute_unfollowed(dest).map_err(|e| match dest.parent() {
        Some(parent) if e.kind() == std::io::ErrorKind::NotFound => refuse(format!(
            "its directory {} does not exist; create it first (mkdir -p), or choose another \
             destination",
            shown(&parent.to_string_lossy())
        )),
        _ => refuse(format!(
            "cannot resolve it ({e}); its parent directory must exist"
        )),
    })?;
    if absolute.parent().is_none() {
        return Err(refuse("it is the root directory".into()));
    }
    if let Ok(cwd) = std::env::current_dir().and_then(fs::canonicalize) {
        if cwd.starts_with(&absolute) {
            return Err(refuse(
                "it is the current directory or one of its parents".into(),
            ));
        }
    }
    if let Some(home) = std::env::var_os("HOME").and_then(|h| fs::canonicalize(h).ok()) {
        if home.starts_with(&absolute) {
            return Err(refuse(
                "it is the home directory or one of its parents".into(),
            ));
        }
    }
    let existing = fs::symlink_metadata(dest).ok();
    let contents = match &existing {
        Some(meta) if meta.is_dir() => Some(classify_dir(dest)),
        _ => None,
    };
    if let Some(source) = source {
        // Follow every link of the source: it is read through them.
        if let Ok(source) = fs::canonicalize(source) {
            // Adding to an OCI layout removes nothing, so it may add to its own source
            // (skopeo copy oci:L:a oci:L:b); nothing else may touch the source.
            let adds_to_itself = source == absolute
                && !force
                && output == (Output::Directory { appendable: true })
                && contents == Some(Contents::Layout(LayoutKind::Oci));
            if source.starts_with(&absolute) && !adds_to_itself {
                return Err(refuse(if source == absolute {
                    "it is the source".into()
                } else {
                    format!(
                        "it contains the source {}",
                        shown(&source.to_string_lossy())
                    )
                }));
            }
            if absolute.starts_with(&source) && source != absolute {
                return Err(refuse("it is inside the source directory".into()));
            }
        }
    }
    plan_for(&existing, contents.as_ref(), output, force).map_err(refuse)
}

/// Refuse a destination `dest` that is `input`, contains it, or lies inside it (an
/// input that is read, and not the source `plan` checks: the layers of an edit).
/// Nothing is refused for an input or destination that cannot be resolved: `plan`
/// and the reading of the input say what is wrong with those.
pub(crate) fn refuse_touching_input(dest: &Path, input: &Path) -> Result<()> {
    let (Ok(absolute), Ok(input)) = (absolute_unfollowed(dest), fs::canonicalize(input)) else {
        return Ok(());
    };
    let reason = if input == absolute {
        "it is an input"
    } else if input.starts_with(&absolute) {
        "it contains an input"
    } else if absolute.starts_with(&input) {
        "it is inside an input directory"
    } else {
        return Ok(());
    };
    Err(Error::DestinationRefused {
        path: shown(&dest.to_string_lossy()),
        reason: format!("{reason}, {}", shown(&input.to_string_lossy())),
    })
}

fn plan_for(
    existing: &Option<fs::Metadata>,
    contents: Option<&Contents>,
    output: Output,
    force: bool,
) -> std::result::Result<Plan, String> {
    let Some(meta) = existing else {
        return Ok(Plan::Create);
    };
    let file_type = meta.file_type();
    match output {
        Output::File if file_type.is_file() || file_type.is_symlink() => {
            if force {
                Ok(Plan::Replace)
            } else if file_type.is_symlink() {
                Err(format!("it exists, a symbolic link; {} would replace the link itself (never its target) once the new archive is complete", Setting::Force))
            } else {
                Err(format!(
                    "it exists, a file of {} bytes; {} would replace that file once the new archive is complete, or choose another name",
                    meta.len(),
                    Setting::Force
                ))
            }
        }
        Output::File if file_type.is_dir() => {
            Err("it is a directory, and a tar output never replaces a directory".into())
        }
        Output::Directory { .. } if file_type.is_file() => Err(format!(
            "it is a file, and a directory output never replaces a file (use a .tar name or {} docker-archive/oci-archive for a file)",
            Setting::To
        )),
        Output::Directory { .. } if file_type.is_symlink() => Err(
            "it is a symbolic link; dockhand neither follows nor replaces it with a directory (name the directory itself)"
                .into(),
        ),
        Output::Directory { appendable } if file_type.is_dir() => {
            match contents.expect("classified above") {
                Contents::Empty => Ok(Plan::FillEmpty),
                Contents::Layout(_) if force => Ok(Plan::Replace),
                Contents::Layout(LayoutKind::Oci) if appendable => Ok(Plan::AddToOciLayout),
                Contents::Layout(kind) => Err(format!(
                    "it holds {}; {} would replace that whole directory once the new output is complete{}",
                    kind.describe(),
                    Setting::Force,
                    if matches!(kind, LayoutKind::Oci) {
                        format!(" ({} oci would add to it instead)", Setting::To)
                    } else {
                        String::new()
                    }
                )),
                Contents::Foreign(what) => Err(format!(
                    "{what}; dockhand replaces only an empty directory or an image layout it could have written, so it is kept"
                )),
            }
        }
        _ => Err(format!(
            "it is {}, which dockhand never replaces (write to - and redirect to send an archive there)",
            special_kind(meta)
        )),
    }
}

/// Why an existing OCI layout cannot be added to, or `Ok` when it can: the output's own
/// check (an OCI layout's is `oci::check_addable`).
pub(crate) type CheckAddable = fn(&Path) -> std::result::Result<(), String>;

/// The refusal of an existing OCI layout that `check` found cannot be added to, before
/// anything was written. Only reached without `--force` (with it the layout is
/// replaced), so it says what `--force` would do.
pub(crate) fn not_addable(dest: &Path, reason: &str) -> Error {
    Error::DestinationRefused {
        path: shown(&dest.to_string_lossy()),
        reason: format!(
            "{reason}; {} would replace the whole layout",
            Setting::Force
        ),
    }
}

/// What a new output (planned [`Plan::Create`] or [`Plan::FillEmpty`]) does when, as it
/// is renamed in, something has appeared at `dest` since it was planned. An OCI layout,
/// for an output that can add to one (`check_addable` given) and that `check_addable`
/// accepts, is added to, as if this run had started after it existed:
/// [`Plan::AddToOciLayout`]. Anything else is kept, and the error says what appeared;
/// it mentions `--force` only when `--force` was not given and would replace that.
pub(crate) fn appeared(
    dest: &Path,
    output: Output,
    force: bool,
    check_addable: Option<CheckAddable>,
) -> Result<Plan> {
    let existing = fs::symlink_metadata(dest).ok();
    let contents = match &existing {
        Some(meta) if meta.is_dir() => Some(classify_dir(dest)),
        _ => None,
    };
    let what = match (&existing, &contents) {
        (_, Some(Contents::Layout(LayoutKind::Oci))) => match check_addable {
            Some(check) => match check(dest) {
                Ok(()) => return Ok(Plan::AddToOciLayout),
                Err(reason) => format!("an OCI image layout ({reason})"),
            },
            None => LayoutKind::Oci.describe().into(),
        },
        (_, Some(Contents::Layout(kind))) => kind.describe().into(),
        (_, Some(Contents::Empty)) => "an empty directory".into(),
        (_, Some(Contents::Foreign(_))) => "a directory of other files".into(),
        (Some(meta), None) if meta.is_file() => format!("a file of {} bytes", meta.len()),
        (Some(meta), None) if meta.file_type().is_symlink() => "a symbolic link".into(),
        (Some(meta), None) => special_kind(meta).into(),
        (None, _) => "something (gone again since)".into(),
    };
    let force_would_replace =
        !force && plan_for(&existing, contents.as_ref(), output, true) == Ok(Plan::Replace);
    Err(Error::DestinationAppeared {
        path: shown(&dest.to_string_lossy()),
        what,
        force_would_replace,
    })
}

fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// The absolute path of `path` with every component but the last resolved: a
/// destination that is a symlink is the link, never its target.
fn absolute_unfollowed(path: &Path) -> std::io::Result<PathBuf> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            Ok(fs::canonicalize(parent)?.join(name))
        }
        // `/`, `.`, `..`, `a/..`: no last name to keep unresolved.
        _ => fs::canonicalize(path),
    }
}

/// What the directory `dir` holds, judged by names and file types only (nothing is
/// read). Stops at the first entry that no image layout holds.
pub fn classify_dir(dir: &Path) -> Contents {
    let entries = match read_names(dir) {
        Ok(e) => e,
        Err(e) => return Contents::Foreign(format!("it cannot be listed ({e})")),
    };
    if entries.is_empty() {
        return Contents::Empty;
    }
    let mut oci_markers = false;
    let mut docker_markers = false;
    let mut dir_markers = false;
    let mut docker_files = false;
    let mut dir_files = false;
    for (name, kind) in &entries {
        let Some(name) = name.to_str() else {
            return foreign(&name.to_string_lossy(), *kind, "its name is not UTF-8");
        };
        if is_staging(name) {
            continue;
        }
        match (name, *kind) {
            ("oci-layout" | "index.json", Kind::File) => oci_markers = true,
            ("manifest.json", Kind::File) => docker_markers = true,
            ("repositories", Kind::File) => docker_markers = true,
            ("version", Kind::File) => dir_markers = true,
            ("blobs", Kind::Dir) => {
                if let Some(problem) = check_blob_store(&dir.join("blobs")) {
                    return Contents::Foreign(problem);
                }
            }
            (name, Kind::Dir) if is_hex64(name) => {
                if let Some(problem) = check_v1_dir(&dir.join(name), name) {
                    return Contents::Foreign(problem);
                }
                docker_files = true;
            }
            (name, Kind::File | Kind::Symlink) if is_docker_file(name) => docker_files = true,
            (name, Kind::File | Kind::Symlink) if is_dir_file(name) => dir_files = true,
            (name, kind) => return foreign(name, kind, "which is not part of an image layout"),
        }
    }
    if !(oci_markers || docker_markers || dir_markers) {
        return Contents::Foreign(
            "it holds files but no oci-layout, index.json, manifest.json, repositories or version, so it is not recognisably an image layout".into(),
        );
    }
    let kind = if dir_markers || (dir_files && !docker_files) {
        LayoutKind::Dir
    } else if docker_markers || docker_files {
        LayoutKind::DockerSave
    } else {
        LayoutKind::Oci
    };
    Contents::Layout(kind)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::File => "a file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Other => "a special file",
        }
    }
}

fn foreign(name: &str, kind: Kind, why: &str) -> Contents {
    Contents::Foreign(format!(
        "it holds {} ({}), {why}",
        shown(name),
        kind.describe()
    ))
}

fn read_names(dir: &Path) -> std::io::Result<Vec<(std::ffi::OsString, Kind)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let t = entry.file_type()?;
        let kind = if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        out.push((entry.file_name(), kind));
    }
    // Report the same entry whatever order the filesystem lists them in.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `blobs/<algorithm>/<encoded>`, files only.
fn check_blob_store(blobs: &Path) -> Option<String> {
    let algorithms = match read_names(blobs) {
        Ok(a) => a,
        Err(e) => return Some(format!("its blobs directory cannot be listed ({e})")),
    };
    for (alg, kind) in algorithms {
        let alg_name = alg.to_string_lossy();
        if kind != Kind::Dir || !is_algorithm(&alg_name) {
            return Some(blob_store_stranger(&format!("blobs/{alg_name}"), kind));
        }
        let blobs_of = match read_names(&blobs.join(&alg)) {
            Ok(b) => b,
            Err(e) => return Some(format!("blobs/{} cannot be listed ({e})", shown(&alg_name))),
        };
        for (blob, kind) in blobs_of {
            let name = blob.to_string_lossy();
            if is_staging(&name) {
                continue;
            }
            if kind != Kind::File || !is_encoded(&name) {
                return Some(blob_store_stranger(
                    &format!("blobs/{alg_name}/{name}"),
                    kind,
                ));
            }
        }
    }
    None
}

fn blob_store_stranger(path: &str, kind: Kind) -> String {
    format!(
        "it holds {} ({}), which is not a blob of an image layout",
        shown(path),
        kind.describe()
    )
}

/// A docker-save `<v1 id>/` directory: `VERSION`, `json`, `layer.tar`.
fn check_v1_dir(dir: &Path, id: &str) -> Option<String> {
    let names = match read_names(dir) {
        Ok(n) => n,
        Err(e) => return Some(format!("{id} cannot be listed ({e})")),
    };
    for (name, kind) in names {
        let name = name.to_string_lossy();
        let fits = match &*name {
            "VERSION" | "json" => kind == Kind::File,
            "layer.tar" => matches!(kind, Kind::File | Kind::Symlink),
            _ => false,
        };
        if !fits {
            return Some(format!(
                "it holds {id}/{} ({}), which is not part of a docker-save layer directory",
                shown(&name),
                kind.describe()
            ));
        }
    }
    None
}

/// Top-level files of docker-save trees: `<hex>.json` configs, skopeo's `<hex>.tar`
/// layers, go-containerregistry's `sha256:<hex>` configs and `<hex>.tar.gz` layers.
fn is_docker_file(name: &str) -> bool {
    if let Some(hex) = name.strip_prefix("sha256:") {
        return is_hex64(hex);
    }
    let (hex, ext) = name.split_at(name.len().min(64));
    is_hex64(hex) && matches!(ext, ".json" | ".tar" | ".tar.gz" | ".tar.zst")
}

/// Top-level files of `dir:` layouts: `<hex>` blobs (`<hex>.tar` in version 1.0),
/// `<hex>.manifest.json` of lists, `signature-<n>` and `<hex>.signature-<n>`.
fn is_dir_file(name: &str) -> bool {
    let (hex, rest) = name.split_at(name.len().min(64));
    let signature = |s: &str| {
        s.strip_prefix("signature-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if is_hex64(hex) {
        return matches!(rest, "" | ".tar" | ".manifest.json")
            || rest.strip_prefix('.').is_some_and(signature);
    }
    signature(name)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The image-spec grammar of a digest algorithm: `[a-z0-9]+([+._-][a-z0-9]+)*`.
fn is_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The image-spec grammar of an encoded digest: `[a-zA-Z0-9=_-]+`.
fn is_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// A name dockhand gives its own staging files and directories.
fn is_staging(name: &str) -> bool {
    name.starts_with('.') && name.contains(STAGING_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn touch(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn recognises_layouts_and_nothing_more() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(classify_dir(d), Contents::Empty);
        touch(d, "oci-layout");
        touch(d, "index.json");
        touch(d, &format!("blobs/sha256/{HEX}"));
        assert_eq!(classify_dir(d), Contents::Layout(LayoutKind::Oci));
        touch(d, "manifest.json");
        assert_eq!(classify_dir(d), Contents::Layout(LayoutKind::DockerSave));
        touch(d, &format!("{HEX}/layer.tar"));
        touch(d, &format!("{HEX}.json"));
        assert_eq!(classify_dir(d), Contents::Layout(LayoutKind::DockerSave));
        touch(d, "README.md");
        let Contents::Foreign(why) = classify_dir(d) else {
            panic!("a README beside a layout is not a layout");
        };
        assert!(why.contains("README.md"), "{why}");
    }

    #[test]
    fn strangers_inside_a_layout_are_found() {
        for stranger in [
            &format!("blobs/sha256/{HEX}/nested") as &str,
            "blobs/sha256/notes.txt",
            "blobs/notes.txt",
            &format!("{HEX}/notes.txt"),
            "src/main.rs",
            ".git/config",
        ] {
            let tmp = tempfile::tempdir().unwrap();
            touch(tmp.path(), "index.json");
            touch(tmp.path(), "oci-layout");
            touch(tmp.path(), stranger);
            assert!(
                matches!(classify_dir(tmp.path()), Contents::Foreign(_)),
                "{stranger}"
            );
        }
    }

    #[test]
    fn dir_layouts_are_recognised() {
        let tmp = tempfile::tempdir().unwrap();
        touch(tmp.path(), "version");
        touch(tmp.path(), "manifest.json");
        touch(tmp.path(), HEX);
        touch(tmp.path(), "signature-1");
        assert_eq!(classify_dir(tmp.path()), Contents::Layout(LayoutKind::Dir));
        let tmp = tempfile::tempdir().unwrap();
        touch(tmp.path(), HEX);
        assert!(matches!(classify_dir(tmp.path()), Contents::Foreign(_)));
    }

    #[test]
    fn what_appeared_is_added_to_only_when_it_is_an_addable_oci_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let oci = Output::Directory { appendable: true };
        let addable: CheckAddable = |_| Ok(());
        let broken: CheckAddable = |_| Err("its index.json is not JSON".into());
        let layout = d.join("layout");
        touch(&layout, "index.json");
        touch(&layout, "oci-layout");
        assert_eq!(
            appeared(&layout, oci, false, Some(addable)).unwrap(),
            Plan::AddToOciLayout
        );
        // Whatever cannot be added to is kept, and --force is named only when it was
        // not given and would replace what is there.
        let hint = |dest: &Path, output, force, check| match appeared(dest, output, force, check) {
            Err(Error::DestinationAppeared {
                what,
                force_would_replace,
                ..
            }) => (what, force_would_replace),
            other => panic!("{other:?}"),
        };
        let (what, force_would_replace) = hint(&layout, oci, false, Some(broken));
        assert!(what.contains("is not JSON"), "{what}");
        assert!(force_would_replace);
        assert!(!hint(&layout, oci, true, Some(broken)).1);
        let docker = Output::Directory { appendable: false };
        assert_eq!(
            hint(&layout, docker, false, None),
            ("an OCI image layout".into(), true)
        );
        let file = d.join("out.tar");
        fs::write(&file, b"theirs").unwrap();
        assert_eq!(
            hint(&file, Output::File, false, None),
            ("a file of 6 bytes".into(), true)
        );
        assert!(!hint(&file, Output::File, true, None).1);
        assert!(!hint(&file, oci, false, Some(addable)).1);
        let project = d.join("project");
        touch(&project, "README.md");
        assert_eq!(
            hint(&project, oci, false, Some(addable)),
            ("a directory of other files".into(), false)
        );
        let message = appeared(&file, Output::File, true, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("appeared there while dockhand was writing"),
            "{message}"
        );
        assert!(message.contains("nothing was replaced"), "{message}");
        assert!(!message.contains("--force"), "{message}");
    }

    #[test]
    fn plans_follow_the_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let oci = Output::Directory { appendable: true };
        let absent = d.join("absent");
        assert_eq!(plan(&absent, oci, false, None).unwrap(), Plan::Create);
        let file = d.join("file.txt");
        fs::write(&file, b"text").unwrap();
        assert!(plan(&file, oci, true, None).is_err());
        assert_eq!(
            plan(&file, Output::File, true, None).unwrap(),
            Plan::Replace
        );
        assert!(plan(&file, Output::File, false, None).is_err());
        let layout = d.join("layout");
        touch(&layout, "index.json");
        touch(&layout, "oci-layout");
        assert_eq!(
            plan(&layout, oci, false, None).unwrap(),
            Plan::AddToOciLayout
        );
        assert_eq!(plan(&layout, oci, true, None).unwrap(), Plan::Replace);
        let docker = Output::Directory { appendable: false };
        assert!(plan(&layout, docker, false, None).is_err());
        assert!(plan(&layout, Output::File, true, None).is_err());
        // The directory holding the source is never a destination.
        let source = layout.join("index.json");
        assert!(plan(&layout, oci, true, Some(&source)).is_err());
        // Adding to the source layout itself is allowed; replacing it is not.
        assert_eq!(
            plan(&layout, oci, false, Some(&layout)).unwrap(),
            Plan::AddToOciLayout
        );
        assert!(plan(&layout, oci, true, Some(&layout)).is_err());
        assert!(plan(&layout.join("sub"), oci, false, Some(&layout)).is_err());
        assert!(plan(Path::new("/"), oci, true, None).is_err());
        assert!(plan(Path::new("."), oci, true, None).is_err());
    }
}
