//! `docker://` references in skopeo's syntax, normalised as Docker does.

use crate::error::Setting;
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::reference::{valid_tag, Reference, DEFAULT_REGISTRY};
use crate::text::shown;

/// Where Docker Hub's API answers (`docker.io` names it in references).
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// An image in a registry: `registry/repository` and a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    /// The tag, when one was given (or defaulted to `latest` with no digest).
    pub tag: Option<String>,
    /// The manifest digest, when the reference pins one.
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// Parse what follows `docker://`: `[HOST[:PORT]/]REPO[:TAG|@sha256:...]`. No host
    /// means `docker.io`, a one-component repository there gets `library/`, and no tag
    /// nor digest means `latest`; `repository_only` leaves the tag out instead (a
    /// destination that names only a repository).
    pub fn parse(text: &str, repository_only: bool) -> Result<RegistryRef> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "docker://{}: {why}; expected docker://[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST], \
                 such as docker://docker.io/library/busybox:latest",
                shown(text)
            ))
        };
        if let Some(host) = userinfo_host(text) {
            // Shown without what precedes the `@`: it may be a password.
            return Err(Error::Usage(format!(
                "docker://***@{}: credentials do not belong in a reference (they would be \
                 shown in logs and process lists); give them with {} USER:PASSWORD or \
                 {} FILE, or log in with `docker login {}`",
                shown(host),
                Setting::Creds,
                Setting::Authfile,
                shown(host.split('/').next().unwrap_or(host))
            )));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(Digest::parse(digest).map_err(|e| bad(&format!("invalid digest: {e}")))?),
            ),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(bad("no repository named"));
        }
        let last = name.rsplit('/').next().unwrap_or(name);
        let explicit_tag = last.contains(':');
        let parsed = Reference::parse_why(name).map_err(bad)?;
        let full = parsed.repository();
        let (registry, repository) = full.split_once('/').expect("a repository has a registry");
        let tag = if explicit_tag || (digest.is_none() && !repository_only) {
            Some(parsed.tag().to_string())
        } else {
            None
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad("invalid tag"));
            }
        }
        Ok(RegistryRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The host (and port) the API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to ask for in `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The tagged name (`registry/repository:tag`), when a tag is given.
    pub fn tagged(&self) -> Option<Reference> {
        let tag = self.tag.as_deref()?;
        Reference::parse(&format!("{}/{}:{tag}", self.registry, self.repository)).ok()
    }
}

/// A push destination that names a registry and a path prefix, not a repository:
/// `HOST/` (each image at its own repository path on HOST) or `HOST/PREFIX/` (under
/// PREFIX). The trailing `/` is what says so: `HOST/REPO` is one repository, and a
/// bare `HOST` is, as Docker reads it, a repository of Docker Hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryPrefix {
    /// The registry as references name it (`127.0.0.1:5000`, `mirror.internal`).
    pub registry: String,
    /// The path every repository starts with: empty, or components ending in `/`
    /// (`mirror/hub/`).
    pub prefix: String,
}

impl RegistryPrefix {
    /// Parse what follows `docker://` when it ends with `/` (`None` otherwise):
    /// `HOST[:PORT]/[PREFIX/]`, the host and the prefix checked as a reference's are
    /// (a first component without `.` or `:` that is not `localhost` is a path on
    /// Docker Hub, as Docker reads it).
    pub fn parse(text: &str) -> Result<Option<RegistryPrefix>> {
        let Some(written) = text.strip_suffix('/') else {
            return Ok(None);
        };
        let bad = |why: &str| {
            Error::Usage(format!(
                "docker://{}: {why}; a registry prefix is written docker://HOST/ (each image at its own repository path) or docker://HOST/PREFIX/ (under PREFIX)",
                shown(text)
            ))
        };
        if written.is_empty() || written.ends_with('/') || written.contains('@') {
            return Err(bad("not a registry and prefix"));
        }
        // Two components after it, so that Docker Hub's `library/` is never added.
        let probe = RegistryRef::parse(&format!("{written}/x/y"), true)?;
        if probe.tag.is_some() || probe.digest.is_some() {
            return Err(bad("a prefix has no tag nor digest"));
        }
        let prefix = probe
            .repository
            .strip_suffix("x/y")
            .ok_or_else(|| bad("not a registry and prefix"))?
            .to_string();
        Ok(Some(RegistryPrefix {
            registry: probe.registry,
            prefix,
        }))
    }

    /// The repository an image named `name` is pushed to: the prefix and `name`'s
    /// repository path (`team/app` of `docker.io/team/app:1`, `library/busybox` of
    /// `busybox`), after `name`'s registry when `scoped`. `Err` with the reason when
    /// that is no valid repository on this registry (a registry with a port cannot be
    /// a path component).
    pub fn repository_for(
        &self,
        name: &Reference,
        scoped: bool,
    ) -> std::result::Result<String, &'static str> {
        let full = name.repository();
        let (registry, path) = full.split_once('/').expect("a repository has a registry");
        let repository = if scoped {
            // A port's `:` cannot be in a path: written `_`, as `dockhand sync` does.
            format!("{}{}/{path}", self.prefix, registry.replace(':', "_"))
        } else {
            format!("{}{path}", self.prefix)
        };
        // Read back as a reference: the same registry and the same path, or refused.
        let parsed = Reference::parse_why(&format!("{}/{repository}", self.registry))?;
        if parsed.repository() != format!("{}/{repository}", self.registry) {
            return Err("it would not read back as a repository of this registry");
        }
        Ok(repository)
    }
}

impl std::fmt::Display for RegistryPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.prefix)
    }
}

/// When `text` starts with `USER[:PASSWORD]@`, what follows the `@`. A digest's `@`
/// comes after the repository (which has a `/` or names no host) and is followed by
/// a digest algorithm, so `repo@sha256:...` is not taken for credentials.
fn userinfo_host(text: &str) -> Option<&str> {
    let at = text.find('@')?;
    let first_slash = text.find('/');
    let after = &text[at + 1..];
    let before_path = first_slash.is_none_or(|slash| at < slash);
    let looks_like_digest = first_slash.is_none()
        && ["sha256:", "sha384:", "sha512:"]
            .iter()
            .any(|a| after.starts_with(a));
    (before_path && !looks_like_digest).then_some(after)
}

impl std::fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_hosts_are_validated_whole() {
        let r = RegistryRef::parse("127.0.0.1:65535/a", false).unwrap();
        assert_eq!(r.registry, "127.0.0.1:65535");
        let r = RegistryRef::parse("[::1]:5000/a/b:1", false).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("[::1]:5000", "a/b")
        );
        let err = RegistryRef::parse("127.0.0.1:99999/a", false).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("1 to 65535"),
            "{err}"
        );
    }

    #[test]
    fn credentials_in_a_reference_are_refused_without_showing_them() {
        for text in [
            "user:hunter2@127.0.0.1:5000/a/b:1",
            "user:hunter2@registry.example/a",
            "user:hunter2@localhost",
            "hunter2@host.example/a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "user:hunter2@host:5000",
        ] {
            let err = RegistryRef::parse(text, false).unwrap_err();
            let message = err.to_string();
            assert!(err.is_usage(), "{text}: {message}");
            assert!(!message.contains("hunter2"), "{text}: {message}");
            assert!(message.contains("`creds`"), "{text}: {message}");
        }
        // A digest's `@` is not taken for credentials.
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert!(RegistryRef::parse(&format!("busybox@{digest}"), false).is_ok());
        assert!(RegistryRef::parse(&format!("h:5000/a/b@{digest}"), false).is_ok());
    }

    #[test]
    fn normalises_as_docker_does() {
        let r = RegistryRef::parse("busybox", false).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = RegistryRef::parse("127.0.0.1:5000/a/b:1.0", false).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("1.0"))
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = RegistryRef::parse(&format!("localhost:5000/x@{d}"), false).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);
        let r = RegistryRef::parse("quay.io/x/y", true).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), "latest");
        for bad in [
            "",
            "x/UPPER",
            "x:bad tag",
            "x@sha256:12",
            "a b",
            "127.0.0.1:99999/x",
            "127.0.0.1:0/x",
            "127.0.0.1:/x",
            "host:65536/x",
            "-host.example/x",
            "host-.example:5000/x",
            "[::1/x",
            "[nothex]:5000/x",
        ] {
            assert!(
                RegistryRef::parse(bad, false).unwrap_err().is_usage(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_trailing_slash_names_a_prefix() {
        let p = RegistryPrefix::parse("127.0.0.1:5000/").unwrap().unwrap();
        assert_eq!(
            (p.registry.as_str(), p.prefix.as_str()),
            ("127.0.0.1:5000", "")
        );
        let p = RegistryPrefix::parse("mirror.internal/hub/x/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.registry.as_str(), p.prefix.as_str()),
            ("mirror.internal", "hub/x/")
        );
        // No host: Docker Hub, without `library/`.
        let p = RegistryPrefix::parse("team/").unwrap().unwrap();
        assert_eq!(
            (p.registry.as_str(), p.prefix.as_str()),
            ("docker.io", "team/")
        );
        assert_eq!(RegistryPrefix::parse("host.example/repo").unwrap(), None);
        for bad in [
            "/",
            "h.example//",
            "h.example/UP/",
            "h.example/a:1/",
            "u:p@h.example/",
        ] {
            assert!(RegistryPrefix::parse(bad).unwrap_err().is_usage(), "{bad}");
        }
        let name = |s: &str| Reference::parse(s).unwrap();
        let p = RegistryPrefix::parse("m.example:5000/mirror/")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.repository_for(&name("busybox:1"), false).unwrap(),
            "mirror/library/busybox"
        );
        assert_eq!(
            p.repository_for(&name("quay.io/team/app:1"), true).unwrap(),
            "mirror/quay.io/team/app"
        );
        assert_eq!(
            p.repository_for(&name("localhost:5000/a:1"), true).unwrap(),
            "mirror/localhost_5000/a"
        );
        assert_eq!(
            p.repository_for(&name("localhost:5000/a:1"), false)
                .unwrap(),
            "mirror/a"
        );
    }
}
