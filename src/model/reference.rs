//! Image references: parsing, Docker's normalization (`busybox` ->
//! `docker.io/library/busybox:latest`) and the familiar form Docker writes in RepoTags.

use std::fmt;

/// The registry Docker assumes when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A normalized, tagged image reference: `registry/path:tag`.
///
/// Digest references are not names an archive can carry in RepoTags, so only tagged
/// references are represented; a reference without a tag gets `latest`.
///
/// ```
/// use dockhand::Reference;
///
/// let r = Reference::parse("myreg:5000/team/app").unwrap();
/// assert_eq!((r.repository().as_str(), r.tag()), ("myreg:5000/team/app", "latest"));
/// assert_eq!(r.familiar(), "myreg:5000/team/app:latest");
/// assert_eq!(Reference::parse("library/alpine:3.19").unwrap().familiar(), "alpine:3.19");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    path: String,
    tag: String,
}

impl Reference {
    /// Parse and normalize a reference such as `busybox`, `myreg:5000/x/y:1.0` or
    /// `docker.io/library/alpine:3.19`. A digest part (`@sha256:...`) is refused.
    ///
    /// ```
    /// use dockhand::Reference;
    ///
    /// let r = Reference::parse("busybox").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    /// assert_eq!(r.familiar(), "busybox:latest");
    /// assert!(Reference::parse("busybox@sha256:0123").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Reference, String> {
        Reference::parse_why(s).map_err(|why| {
            format!(
                "invalid image reference {:?}: {why}",
                s.chars().take(200).collect::<String>()
            )
        })
    }

    /// Like [`Reference::parse`], but the error is only the reason, without the text:
    /// a caller that shows the text escapes it itself.
    ///
    /// ```
    /// use dockhand::Reference;
    ///
    /// assert_eq!(Reference::parse_why("a b").unwrap_err(), "repository names must be lowercase letters, digits and separators");
    /// ```
    pub fn parse_why(s: &str) -> Result<Reference, &'static str> {
        if s.is_empty() {
            return Err("empty");
        }
        if s.len() > 4096 {
            return Err("too long");
        }
        if s.contains('@') {
            return Err("digest references cannot name an image in an archive");
        }
        let (name, tag) = match s.rfind(':') {
            Some(i) if !s[i + 1..].contains('/') => (&s[..i], Some(&s[i + 1..])),
            _ => (s, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if let Some(problem) = registry_problem(&registry) {
            return Err(problem);
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err("repository names must be lowercase letters, digits and separators");
        }
        let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = tag.unwrap_or("latest");
        if !valid_tag(tag) {
            return Err("invalid tag");
        }
        Ok(Reference {
            registry,
            path,
            tag: tag.to_string(),
        })
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `registry/path` without the tag.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    /// The repository in Docker's familiar form: `busybox`, `user/app`, `quay.io/x/y`.
    pub fn familiar_repository(&self) -> String {
        // `docker.io/a.b/c` shortened to `a.b/c` would read back as registry `a.b`:
        // keep the registry whenever the first path component looks like one.
        let first = self.path.split('/').next().unwrap_or("");
        let ambiguous =
            self.path.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if self.registry == DEFAULT_REGISTRY && !ambiguous {
            self.path
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// Docker's familiar form with tag, as `docker save` writes in RepoTags.
    pub fn familiar(&self) -> String {
        format!("{}:{}", self.familiar_repository(), self.tag)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.path, self.tag)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// An OCI `org.opencontainers.image.ref.name` value, by the image-spec grammar:
/// `ref := component ("/" component)*`, `component := alphanum (separator alphanum)*`,
/// `alphanum := [A-Za-z0-9]+`, `separator := [-._:@+] | "--"`.
///
/// A value outside it is not a name any conforming tool writes, so readers drop it
/// rather than copy it into an output. (`latest`, `docker.io/library/alpine:3.19` and
/// `v1--rc+build@x` are ref names; `a//b`, `../etc` and `x\ny` are not.)
pub fn valid_ref_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(valid_ref_component)
}

fn valid_ref_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let ok = match &b[start..i] {
            [one] => b"-._:@+".contains(one),
            sep => sep == b"--",
        };
        if !ok {
            return false;
        }
    }
    true
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ separated by one of `.`, `_`, `__` or any number of `-`.
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// What is wrong with `registry` as the `HOST[:PORT]` of a reference, if anything: a
/// host of DNS labels (letters, digits, inner hyphens), an IPv4 address or a bracketed
/// IPv6 address, and a port from 1 to 65535. A port out of range is refused here so
/// that it can never fall back to a default port, and with it the credentials meant
/// for this registry to whatever listens there.
pub(crate) fn registry_problem(registry: &str) -> Option<&'static str> {
    let (host, _) = match split_authority(registry) {
        Ok(split) => split,
        Err(problem) => return Some(problem),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.starts_with('[') && !host.split('.').all(label) {
        return Some("invalid registry host");
    }
    None
}

/// `host[:port]` or `[IPv6][:port]`, split: the host (an IPv6 address keeps its
/// brackets and is checked here) and the port, which must be 1 to 65535. What a host
/// name may hold is the caller's to judge (references and URLs differ).
pub(crate) fn split_authority(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("an IPv6 address must be closed with ]")?;
        if authority[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address");
        }
        let port = match &authority[end + 1..] {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or("invalid host")?),
        };
        (&authority[..=end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err("the port must be a number from 1 to 65535"),
            }
        }
        Some(_) => return Err("the port must be a number from 1 to 65535"),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
            (
                "docker.io/library/alpine:3",
                "docker.io/library/alpine:3",
                "alpine:3",
            ),
            (
                "index.docker.io/library/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "myreg:5000/x/y:1.0",
                "myreg:5000/x/y:1.0",
                "myreg:5000/x/y:1.0",
            ),
            (
                "example.com/empty:latest",
                "example.com/empty:latest",
                "example.com/empty:latest",
            ),
            (
                "docker.io/a.b/c:1",
                "docker.io/a.b/c:1",
                "docker.io/a.b/c:1",
            ),
            (
                "docker.io/localhost/c",
                "docker.io/localhost/c:latest",
                "docker.io/localhost/c:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn ref_names_follow_the_image_spec_grammar() {
        for good in [
            "latest",
            "1.0",
            "v1-rc_2",
            "A.b:c@d+e",
            "x--y",
            "example.com/a/b:1",
            "sha256:abc",
        ] {
            assert!(valid_ref_name(good), "{good}");
        }
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a---b",
            "a..b",
            "a.-b",
            "a b",
            "a\nb",
            "..",
            "a/../b",
            "é",
            "a__b",
            "x\u{202e}",
        ] {
            assert!(!valid_ref_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            "Upper",
            "a@sha256:abc",
            "x:",
            "x:-bad",
            "a//b",
            "../x",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
