//! `registries.conf` as podman and skopeo read it (containers-registries.conf(5),
//! version 2, and the `insecure` and `block` lists of version 1): which registry
//! an image name is really pulled from (`location`), its mirrors, and whether it may
//! be reached over plain HTTP (`insecure`) or not at all (`blocked`).
//!
//! Files, as containers/image finds them: the file named by
//! `RegistryOptions::registries_conf` or `CONTAINERS_REGISTRIES_CONF`, else
//! `$HOME/.config/containers/registries.conf` when it exists, else
//! `/etc/containers/registries.conf`; then the drop-ins `*.conf` of
//! `/etc/containers/registries.conf.d/` (not when the home file is used) and
//! `$HOME/.config/containers/registries.conf.d/`, each directory in lexical order. A
//! later file's `[[registry]]` replaces an earlier one with the same prefix.
//!
//! Mirrors and `location` apply to pulls only, as in containers/image; `blocked` and
//! `insecure` to pushes too. Registries on loopback get no exception: as podman and
//! skopeo (and unlike Docker), one that speaks plain HTTP needs `insecure = true` or
//! `tls_verify` off.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::reference::RegistryRef;
use super::RegistryOptions;
use crate::error::{Error, Result};
use crate::text::shown;

/// The system file.
const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
/// The system drop-in directory.
const SYSTEM_DIR: &str = "/etc/containers/registries.conf.d";
/// The user's file and drop-in directory, under `$HOME`.
const USER_FILE: &str = ".config/containers/registries.conf";
const USER_DIR: &str = ".config/containers/registries.conf.d";
/// The largest configuration file read.
const MAX_FILE: u64 = 1 << 20;
/// Most drop-in files read from one directory.
const MAX_DROP_INS: usize = 1000;

/// Where the configuration is looked for (the process's own places, or a test's).
#[derive(Clone, Debug, Default)]
pub(crate) struct Places {
    /// The one main file named explicitly (option or environment).
    pub explicit: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// The system file and drop-in directory.
    pub system_file: PathBuf,
    pub system_dir: PathBuf,
}

impl Places {
    /// The places of this process: `options.registries_conf`, then
    /// `CONTAINERS_REGISTRIES_CONF`, `$HOME`, `/etc/containers`.
    pub(crate) fn of_process(options: &RegistryOptions) -> Places {
        let explicit = options.registries_conf.clone().or_else(|| {
            std::env::var_os("CONTAINERS_REGISTRIES_CONF")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Places {
            explicit,
            home: std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system_file: PathBuf::from(SYSTEM_FILE),
            system_dir: PathBuf::from(SYSTEM_DIR),
        }
    }
}

/// Which endpoints serve a pull, and whether mirrors are asked for tags, digests or
/// both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PullFrom {
    All,
    DigestOnly,
    TagOnly,
}

/// A mirror of a `[[registry]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mirror {
    location: String,
    insecure: bool,
    pull_from: PullFrom,
}

/// One `[[registry]]` table, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    prefix: String,
    /// Empty for a wildcard prefix without one: names are not rewritten.
    location: String,
    insecure: bool,
    blocked: bool,
    mirrors: Vec<Mirror>,
    /// The file it came from, for messages.
    file: PathBuf,
}

/// The registries configuration: every `[[registry]]` of every file read.
#[derive(Clone, Debug, Default)]
pub(crate) struct RegistriesConf {
    entries: Vec<Entry>,
}

/// A registry to send requests to for an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The image there (rewritten by `location`, or a mirror's).
    pub reference: RegistryRef,
    /// Plain HTTP and unverified TLS allowed.
    pub insecure: bool,
    /// It is a mirror (credentials: its own host's, never `--creds`).
    pub mirror: bool,
    /// It is on another host than the registry the user named (a mirror, or a
    /// `location` elsewhere): it gets neither the `creds` nor the `cert_dir` given for
    /// that registry, only its own host's auth-file entry and certs.d folders.
    pub elsewhere: bool,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    registry: Vec<RawRegistry>,
    /// Version 1: `[registries.insecure] registries = [...]`, `[registries.block]`.
    registries: Option<RawV1>,
}

#[derive(Deserialize)]
struct RawV1 {
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

impl RegistriesConf {
    /// The configuration of this process (see the module's documentation).
    pub(crate) fn load(options: &RegistryOptions) -> Result<RegistriesConf> {
        RegistriesConf::load_from(&Places::of_process(options))
    }

    /// The configuration found at `places`.
    pub(crate) fn load_from(places: &Places) -> Result<RegistriesConf> {
        let user_file = places.home.as_ref().map(|h| h.join(USER_FILE));
        let mut dirs = Vec::new();
        let main = if let Some(explicit) = &places.explicit {
            // Named explicitly: it must exist.
            dirs.push(places.system_dir.clone());
            Some(explicit.clone())
        } else if let Some(user) = user_file.filter(|f| f.is_file()) {
            Some(user)
        } else {
            dirs.push(places.system_dir.clone());
            places
                .system_file
                .is_file()
                .then(|| places.system_file.clone())
        };
        if let Some(home) = &places.home {
            dirs.push(home.join(USER_DIR));
        }
        let mut files: Vec<PathBuf> = main.into_iter().collect();
        for dir in dirs {
            files.extend(drop_ins(&dir)?);
        }
        let mut merged: Vec<Entry> = Vec::new();
        for file in files {
            for entry in parse_file(&file)? {
                match merged.iter_mut().find(|e| e.prefix == entry.prefix) {
                    Some(old) => *old = entry,
                    None => merged.push(entry),
                }
            }
        }
        Ok(RegistriesConf { entries: merged })
    }

    /// The configuration in `text` alone (named `file` in messages).
    #[cfg(test)]
    fn parse(text: &str, file: &Path) -> Result<RegistriesConf> {
        Ok(RegistriesConf {
            entries: parse_text(text, file)?,
        })
    }

    /// The `[[registry]]` whose prefix matches `name` longest, and the length of the
    /// matched part of `name`.
    fn find(&self, name: &str) -> Option<(&Entry, usize)> {
        self.entries
            .iter()
            .filter_map(|e| matching_prefix(name, &e.prefix).map(|len| (e, len)))
            .max_by_key(|&(e, len)| (len, e.prefix.len()))
    }

    /// Where a pull of `reference` is tried, in order: the mirrors that serve it,
    /// then the registry itself (as `location` rewrites it). Refused when blocked.
    pub(crate) fn pull_endpoints(&self, reference: &RegistryRef) -> Result<Vec<Endpoint>> {
        let name = full_name(reference);
        let Some((entry, len)) = self.find(&name) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
                elsewhere: false,
            }]);
        };
        check_blocked(entry, reference)?;
        let rest = &name[len..];
        let rewrite = |location: &str| -> Result<RegistryRef> {
            let text = format!("{location}{rest}");
            let mut rewritten = RegistryRef::parse(&text, true).map_err(|e| Error::Malformed {
                file: shown(&entry.file.display().to_string()),
                problem: format!(
                    "the registry with prefix {} maps {} to an unusable name: {e}",
                    shown(&entry.prefix),
                    shown(&name)
                ),
            })?;
            if rewritten.tag.is_none() && rewritten.digest.is_none() {
                rewritten.tag = reference.tag.clone();
            }
            Ok(rewritten)
        };
        let pinned = reference.digest.is_some();
        let mut out = Vec::new();
        for mirror in &entry.mirrors {
            let serves = match mirror.pull_from {
                PullFrom::All => true,
                PullFrom::DigestOnly => pinned,
                PullFrom::TagOnly => !pinned,
            };
            if serves {
                out.push(Endpoint {
                    reference: rewrite(&mirror.location)?,
                    insecure: mirror.insecure,
                    mirror: true,
                    elsewhere: true,
                });
            }
        }
        let itself = if entry.location.is_empty() {
            reference.clone()
        } else {
            rewrite(&entry.location)?
        };
        out.push(Endpoint {
            elsewhere: itself.registry != reference.registry,
            reference: itself,
            insecure: entry.insecure,
            mirror: false,
        });
        Ok(out)
    }

    /// Where `reference` is reached directly (a push, a tag list): the registry as
    /// named, without mirrors or `location`, as containers/image does. Refused when
    /// blocked.
    pub(crate) fn direct_endpoint(&self, reference: &RegistryRef) -> Result<Endpoint> {
        let found = self.find(&full_name(reference));
        if let Some((entry, _)) = found {
            check_blocked(entry, reference)?;
        }
        // `insecure` describes the entry's `location`: it applies here only when that
        // is this very host (an entry for a cache elsewhere must not turn off the checks
        // of the registry it stands in for).
        let same_host = |e: &Entry| {
            e.location.is_empty()
                || e.location.split('/').next() == Some(reference.registry.as_str())
        };
        Ok(Endpoint {
            reference: reference.clone(),
            insecure: found.is_some_and(|(e, _)| e.insecure && same_host(e)),
            mirror: false,
            elsewhere: false,
        })
    }
}

/// `registry/repository[:tag][@digest]`, as prefixes are matched against.
fn full_name(reference: &RegistryRef) -> String {
    let mut name = format!("{}/{}", reference.registry, reference.repository);
    if let Some(tag) = &reference.tag {
        name.push(':');
        name.push_str(tag);
    }
    if let Some(digest) = &reference.digest {
        name.push('@');
        name.push_str(&digest.to_string());
    }
    name
}

fn check_blocked(entry: &Entry, reference: &RegistryRef) -> Result<()> {
    if entry.blocked {
        return Err(Error::Registry {
            registry: shown(&reference.registry),
            message: format!(
                "{}/{} is blocked by {} (blocked = true for the prefix {})",
                shown(&reference.registry),
                shown(&reference.repository),
                shown(&entry.file.display().to_string()),
                shown(&entry.prefix)
            ),
        });
    }
    Ok(())
}

/// How much of `name` the prefix matches (the whole prefix, or for `*.example.com`
/// the host it matched), when it does: the name must go on with `/`, `:` (a port
/// after a host-only prefix is not a match) or `@`, or end.
fn matching_prefix(name: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        // `domain` is `.example.com`: the host part of `name` must end with it.
        let host_end = name.find('/').unwrap_or(name.len());
        let host = &name[..host_end];
        let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
        return (host_only.len() > domain.len() && host_only.ends_with(domain)).then_some(host_end);
    }
    let rest = name.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None | Some(b'/') | Some(b'@') => Some(prefix.len()),
        Some(b':') if prefix.contains('/') => Some(prefix.len()),
        _ => None,
    }
}

/// The `*.conf` files of `dir`, in lexical order (none when it does not exist).
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::io(
                format!(
                    "reading the directory {}",
                    shown(&dir.display().to_string())
                ),
                e,
            ))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::io(
                format!(
                    "reading the directory {}",
                    shown(&dir.display().to_string())
                ),
                e,
            )
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
            files.push(path);
            if files.len() > MAX_DROP_INS {
                return Err(Error::Unsupported(format!(
                    "{}: more than {MAX_DROP_INS} drop-in files",
                    shown(&dir.display().to_string())
                )));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn parse_file(file: &Path) -> Result<Vec<Entry>> {
    let context = || {
        format!(
            "reading the registries configuration {}",
            shown(&file.display().to_string())
        )
    };
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| Error::io(context(), e))?;
    if text.len() as u64 > MAX_FILE {
        return Err(malformed(file, format!("larger than {MAX_FILE} bytes")));
    }
    parse_text(&text, file)
}

fn malformed(file: &Path, problem: String) -> Error {
    Error::Malformed {
        file: shown(&file.display().to_string()),
        problem,
    }
}

fn parse_text(text: &str, file: &Path) -> Result<Vec<Entry>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        });
        let message = e.message().lines().next().unwrap_or("").trim().to_string();
        malformed(
            file,
            format!("{}{}", at.unwrap_or_default(), shown(&message)),
        )
    })?;
    let bad = |problem: String| malformed(file, problem);
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen = HashMap::new();
    if let Some(v1) = raw.registries {
        if !raw.registry.is_empty() {
            return Err(bad(
                "mixes the version 1 [registries.*] tables with version 2 [[registry]] tables"
                    .into(),
            ));
        }
        let lists = [(v1.insecure, true), (v1.block, false)];
        for (list, insecure) in lists {
            for host in list.map(|l| l.registries).unwrap_or_default() {
                let host = check_location(&host, &bad)?;
                let entry = match entries.iter_mut().find(|e| e.prefix == host) {
                    Some(entry) => entry,
                    None => {
                        entries.push(Entry {
                            prefix: host.clone(),
                            location: host.clone(),
                            insecure: false,
                            blocked: false,
                            mirrors: Vec::new(),
                            file: file.to_path_buf(),
                        });
                        entries.last_mut().expect("just pushed")
                    }
                };
                if insecure {
                    entry.insecure = true;
                } else {
                    entry.blocked = true;
                }
            }
        }
        return Ok(entries);
    }
    for (n, reg) in raw.registry.into_iter().enumerate() {
        let which = || format!("[[registry]] number {}", n + 1);
        let location = match &reg.location {
            Some(l) => check_location(l, &bad)?,
            None => String::new(),
        };
        let prefix = match &reg.prefix {
            Some(p) if p.starts_with("*.") => {
                let domain = &p[2..];
                if domain.is_empty() || domain.contains(['/', ':', '@', '*']) {
                    return Err(bad(format!(
                        "{}: the prefix {} is not a valid wildcard: only *.DOMAIN is",
                        which(),
                        shown(p)
                    )));
                }
                if !location.is_empty() {
                    return Err(bad(format!(
                        "{}: a wildcard prefix ({}) cannot have a location",
                        which(),
                        shown(p)
                    )));
                }
                p.clone()
            }
            Some(p) => check_location(p, &bad)?,
            None if location.is_empty() => {
                return Err(bad(format!(
                    "{}: neither prefix nor location is set",
                    which()
                )))
            }
            None => location.clone(),
        };
        let location = if location.is_empty() && !prefix.starts_with("*.") {
            prefix.clone()
        } else {
            location
        };
        if let Some(earlier) = seen.insert(prefix.clone(), n) {
            return Err(bad(format!(
                "{}: the prefix {} is also that of [[registry]] number {}",
                which(),
                shown(&prefix),
                earlier + 1
            )));
        }
        let mut mirrors = Vec::new();
        for mirror in &reg.mirror {
            let pull_from = match mirror.pull_from_mirror.as_deref() {
                None | Some("") | Some("all") => PullFrom::All,
                Some("digest-only") => PullFrom::DigestOnly,
                Some("tag-only") => PullFrom::TagOnly,
                Some(other) => {
                    return Err(bad(format!(
                        "{}: pull-from-mirror = {} is not all, digest-only or tag-only",
                        which(),
                        shown(other)
                    )))
                }
            };
            if reg.mirror_by_digest_only && pull_from != PullFrom::All {
                return Err(bad(format!(
                    "{}: pull-from-mirror cannot be set together with mirror-by-digest-only",
                    which()
                )));
            }
            mirrors.push(Mirror {
                location: check_location(&mirror.location, &bad)?,
                insecure: mirror.insecure,
                pull_from: if reg.mirror_by_digest_only {
                    PullFrom::DigestOnly
                } else {
                    pull_from
                },
            });
        }
        entries.push(Entry {
            prefix,
            location,
            insecure: reg.insecure,
            blocked: reg.blocked,
            mirrors,
            file: file.to_path_buf(),
        });
    }
    Ok(entries)
}

/// A `location` (or prefix) without a scheme, trailing `/` removed.
fn check_location(text: &str, bad: &dyn Fn(String) -> Error) -> Result<String> {
    let trimmed = text.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad("an empty location or prefix".into()));
    }
    if trimmed.contains("://") {
        return Err(bad(format!(
            "{}: a location names HOST[:PORT][/PATH], without a scheme",
            shown(text)
        )));
    }
    if trimmed.contains('*') {
        return Err(bad(format!(
            "{}: a * is allowed only as the start of a prefix *.DOMAIN",
            shown(text)
        )));
    }
    if trimmed.contains(char::is_whitespace) {
        return Err(bad(format!("{}: contains white space", shown(text))));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("test.conf")).unwrap()
    }

    fn r(text: &str) -> RegistryRef {
        RegistryRef::parse(text, false).unwrap()
    }

    /// The endpoints of a pull, as `[mirror ]HOST/REPO[:TAG][@DIGEST][ insecure]`.
    fn pulls(conf: &RegistriesConf, name: &str) -> Vec<String> {
        conf.pull_endpoints(&r(name))
            .unwrap()
            .into_iter()
            .map(|e| {
                format!(
                    "{}{}{}",
                    if e.mirror { "mirror " } else { "" },
                    full_name(&e.reference),
                    if e.insecure { " insecure" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn mirrors_come_first_then_the_location() {
        let c = conf(
            r#"
unqualified-search-registries = ["docker.io"]
[aliases]
"x" = "docker.io/library/x"

[[registry]]
prefix = "docker.io"
location = "origin.example:5000"
[[registry.mirror]]
location = "mirror-a.example/hub"
insecure = true
[[registry.mirror]]
location = "mirror-b.example"
"#,
        );
        assert_eq!(
            pulls(&c, "busybox:1"),
            [
                "mirror mirror-a.example/hub/library/busybox:1 insecure",
                "mirror mirror-b.example/library/busybox:1",
                "origin.example:5000/library/busybox:1"
            ]
        );
        // Another registry is untouched.
        assert_eq!(pulls(&c, "quay.io/a/b:2"), ["quay.io/a/b:2"]);
        // A push goes to the name as given.
        let direct = c.direct_endpoint(&r("busybox:1")).unwrap();
        assert_eq!(full_name(&direct.reference), "docker.io/library/busybox:1");
        // Mirrors and a location on another host get neither creds nor the cert dir.
        let elsewhere: Vec<bool> = c
            .pull_endpoints(&r("busybox:1"))
            .unwrap()
            .iter()
            .map(|e| e.elsewhere)
            .collect();
        assert_eq!(elsewhere, [true, true, true]);
        assert!(!direct.elsewhere);
    }

    #[test]
    fn insecure_for_a_cache_elsewhere_leaves_the_named_registry_checked() {
        let c = conf(
            r#"
[[registry]]
prefix = "docker.io"
location = "hub-cache.corp:5000"
insecure = true
[[registry]]
prefix = "plain.corp:5000"
insecure = true
"#,
        );
        // A pull goes to the cache, which is insecure...
        assert_eq!(
            pulls(&c, "busybox:1"),
            ["hub-cache.corp:5000/library/busybox:1 insecure"]
        );
        // ...but a push to the registry named keeps its certificate checks.
        assert!(!c.direct_endpoint(&r("busybox:1")).unwrap().insecure);
        assert!(
            c.direct_endpoint(&r("plain.corp:5000/a:1"))
                .unwrap()
                .insecure
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_separators_count() {
        let c = conf(
            r#"
[[registry]]
location = "reg.example"
insecure = true
[[registry]]
prefix = "reg.example/team"
location = "team.example/t"
[[registry]]
prefix = "*.corp.example"
blocked = true
[[registry]]
prefix = "*.a.corp.example"
"#,
        );
        assert_eq!(
            pulls(&c, "reg.example/other:1"),
            ["reg.example/other:1 insecure"]
        );
        assert_eq!(
            pulls(&c, "reg.example/team/app:1"),
            ["team.example/t/app:1"]
        );
        assert_eq!(
            pulls(&c, "reg.example/teamwork:1"),
            ["reg.example/teamwork:1 insecure"]
        );
        // A host-only prefix does not match another port of the same host.
        assert_eq!(pulls(&c, "reg.example:5000/x:1"), ["reg.example:5000/x:1"]);
        assert!(c.pull_endpoints(&r("x.corp.example/app:1")).is_err());
        assert!(c.pull_endpoints(&r("y.x.corp.example:5000/app:1")).is_err());
        assert_eq!(
            pulls(&c, "b.a.corp.example/app:1"),
            ["b.a.corp.example/app:1"]
        );
        assert_eq!(pulls(&c, "corp.example/app:1"), ["corp.example/app:1"]);
        let err = c
            .direct_endpoint(&r("x.corp.example/app:1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("blocked by test.conf") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn pull_from_mirror_and_digest_only() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let c = conf(
            r#"
[[registry]]
prefix = "reg.example"
[[registry.mirror]]
location = "digests.example"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.example"
pull-from-mirror = "tag-only"
[[registry]]
prefix = "other.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.example"
"#,
        );
        assert_eq!(
            pulls(&c, "reg.example/a:1"),
            ["mirror tags.example/a:1", "reg.example/a:1"]
        );
        assert_eq!(
            pulls(&c, &format!("reg.example/a@{digest}")),
            [
                format!("mirror digests.example/a@{digest}"),
                format!("reg.example/a@{digest}")
            ]
        );
        assert_eq!(pulls(&c, "other.example/a:1"), ["other.example/a:1"]);
        assert_eq!(pulls(&c, &format!("other.example/a@{digest}")).len(), 2);
    }

    #[test]
    fn version_1_lists() {
        let c = conf(
            r#"
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["plain.example:5000"]
[registries.block]
registries = ["bad.example"]
"#,
        );
        assert_eq!(
            pulls(&c, "plain.example:5000/a:1"),
            ["plain.example:5000/a:1 insecure"]
        );
        assert!(c.pull_endpoints(&r("bad.example/a:1")).is_err());
    }

    #[test]
    fn malformed_files_name_the_file_and_line() {
        let err = |text: &str| {
            RegistriesConf::parse(text, Path::new("/etc/x.conf"))
                .unwrap_err()
                .to_string()
        };
        let e = err("[[registry]]\nprefix = \"a\"\ninsecure = maybe\n");
        assert!(e.starts_with("/etc/x.conf: line 3: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("[[registry]]\nprefix = \"a\"\ninsecure = \"yes\"\n");
        assert!(e.starts_with("/etc/x.conf: line 3: "), "{e}");
        for (text, says) in [
            ("[[registry]]\ninsecure = true\n", "neither prefix nor location"),
            ("[[registry]]\nlocation = \"https://a\"\n", "without a scheme"),
            ("[[registry]]\nprefix = \"*.a\"\nlocation = \"b\"\n", "wildcard"),
            ("[[registry]]\nprefix = \"a.*.b\"\n", "a.*.b"),
            ("[[registry]]\nprefix = \"a\"\n[[registry]]\nlocation = \"a/\"\n", "also"),
            (
                "[[registry]]\nprefix = \"a\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"some\"\n",
                "pull-from-mirror",
            ),
            (
                "[[registry]]\nprefix = \"a\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"tag-only\"\n",
                "mirror-by-digest-only",
            ),
            (
                "[registries.insecure]\nregistries = [\"a\"]\n[[registry]]\nprefix = \"b\"\n",
                "version 1",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with("/etc/x.conf: ") && e.contains(says), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn files_drop_ins_and_the_home_file() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let system_file = tmp.path().join("etc/registries.conf");
        let system_dir = tmp.path().join("etc/registries.conf.d");
        let home = tmp.path().join("home");
        write(
            &system_file,
            "[[registry]]\nlocation = \"a.example\"\ninsecure = true\n",
        );
        write(
            &system_dir.join("20-late.conf"),
            "[[registry]]\nlocation = \"b.example\"\nblocked = true\n",
        );
        write(
            &system_dir.join("10-early.conf"),
            "[[registry]]\nlocation = \"b.example\"\ninsecure = true\n",
        );
        write(&system_dir.join("ignored.txt"), "not toml [");
        let places = Places {
            explicit: None,
            home: Some(home.clone()),
            system_file: system_file.clone(),
            system_dir: system_dir.clone(),
        };
        let c = RegistriesConf::load_from(&places).unwrap();
        assert_eq!(pulls(&c, "a.example/x:1"), ["a.example/x:1 insecure"]);
        // The later drop-in replaces the earlier one's table.
        assert!(c.pull_endpoints(&r("b.example/x:1")).is_err());
        // The home file is used instead of the system file and its drop-ins.
        write(
            &home.join(USER_FILE),
            "[[registry]]\nlocation = \"c.example\"\ninsecure = true\n",
        );
        let c = RegistriesConf::load_from(&places).unwrap();
        assert_eq!(pulls(&c, "a.example/x:1"), ["a.example/x:1"]);
        assert_eq!(pulls(&c, "b.example/x:1"), ["b.example/x:1"]);
        assert_eq!(pulls(&c, "c.example/x:1"), ["c.example/x:1 insecure"]);
        // An explicit file must exist.
        let missing = Places {
            explicit: Some(tmp.path().join("nope.conf")),
            ..places
        };
        let e = RegistriesConf::load_from(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.conf"), "{e}");
    }
}
