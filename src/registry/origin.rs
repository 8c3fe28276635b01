//! URLs a registry hands back (redirects, upload locations, `Link` pages, token
//! realms), parsed whole so that where credentials may go is decided by comparing
//! origins (scheme, host and port), never by a string prefix. Anything a registry
//! could use to smuggle another host past a comparison is refused: userinfo
//! (`http://registry@other/`), a port outside 1-65535, an empty or odd host,
//! whitespace and control characters.

use std::fmt;

use crate::model::reference::split_authority;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Who a request goes to: credentials are sent only where this equals the registry's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// The scheme.
    pub scheme: Scheme,
    /// The host, lowercased (an IPv6 address in brackets).
    pub host: String,
    /// The port, the scheme's default when the URL gives none.
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == self.scheme.default_port() {
            write!(f, "{}://{}", self.scheme.as_str(), self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

impl Origin {
    /// `host` or `host:port` (the port only when it is not the scheme's default), as
    /// messages name a host.
    pub(crate) fn host_port(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An absolute `http(s)` URL: its origin and its path with the query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// Scheme, host and port.
    pub origin: Origin,
    /// The path and query, starting with `/` (the fragment is dropped).
    pub path: String,
}

/// Longest URL taken from a registry's answer.
const MAX_URL: usize = 8192;

impl Url {
    /// Parse an absolute `http://` or `https://` URL. The reason it is refused
    /// otherwise, for a message that names where the URL came from.
    pub(crate) fn parse(text: &str) -> Result<Url, &'static str> {
        if text.len() > MAX_URL {
            return Err("the URL is too long");
        }
        if text
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err("the URL holds spaces, control or non-ASCII characters");
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            _ => return Err("not an http:// or https:// URL"),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err("the URL carries a user name or password");
        }
        let (host, port) = split_host_port(authority)?;
        let port = port.unwrap_or(scheme.default_port());
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            origin: Origin { scheme, host, port },
            path,
        })
    }

    /// The URL `reference` names relative to this one (RFC 3986 for the shapes
    /// registries send: absolute, `//host/path`, `/path`, `?query` and a relative
    /// path).
    pub(crate) fn join(&self, reference: &str) -> Result<Url, &'static str> {
        let scheme_end = reference.find(':').filter(|&i| {
            i > 0
                && reference[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
        });
        if scheme_end.is_some() {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.origin.scheme.as_str()));
        }
        let absolute = if reference.starts_with('/') {
            reference.to_string()
        } else if reference.starts_with('?') {
            let path = self.path.split('?').next().unwrap_or("/");
            format!("{path}{reference}")
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        Url::parse(&format!("{}{absolute}", self.origin))
    }

    /// The path without its query, for messages (a redirect target's query may carry a
    /// signature).
    pub(crate) fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// `host[:port]` or `[v6][:port]`: the lowercased host and the port, if given.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = split_authority(authority)?;
    if host.starts_with('[') {
        return Ok((host.to_ascii_lowercase(), port));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // A trailing dot names the same host: it is dropped so both compare equal.
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err("an invalid host");
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Url::parse(text).unwrap().origin
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("http://127.0.0.1:1808/v2/"),
            origin("HTTP://127.0.0.1:1808/x?y")
        );
        assert_eq!(
            origin("https://Registry.Example/v2/"),
            origin("https://registry.example:443/")
        );
        assert_eq!(
            origin("https://registry.example./a"),
            origin("https://registry.example/b")
        );
        assert_ne!(
            origin("http://127.0.0.1:1808/"),
            origin("http://127.0.0.1:18081/")
        );
        assert_ne!(origin("http://h:5000/"), origin("https://h:5000/"));
        assert_ne!(origin("http://h/"), origin("http://h.evil/"));
        assert_eq!(origin("http://[::1]:5000/").host_port(), "[::1]:5000");
        assert_eq!(origin("https://h/").host_port(), "h");
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for bad in [
            "http://127.0.0.1:1808@127.0.0.1:9999/v2/x",
            "http://user:pass@host/v2/",
            "http://host:99999/",
            "http://host:0/",
            "http://host:/",
            "http://host:80a/",
            "http:///path",
            "http://ho st/",
            "http://host\r\nX-Evil: 1/",
            "http://[::1/",
            "ftp://host/",
            "host/path",
            "http://h\u{e9}st/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_the_shapes_registries_send() {
        let base = Url::parse("http://r:5000/v2/a/tags/list?n=2").unwrap();
        let join = |r: &str| base.join(r).unwrap().to_string();
        assert_eq!(
            join("/v2/a/tags/list?last=x"),
            "http://r:5000/v2/a/tags/list?last=x"
        );
        assert_eq!(join("?last=x"), "http://r:5000/v2/a/tags/list?last=x");
        assert_eq!(join("list?last=x"), "http://r:5000/v2/a/tags/list?last=x");
        assert_eq!(join("//other:1/p"), "http://other:1/p");
        assert_eq!(
            join("https://s3.example/b?sig=1#frag"),
            "https://s3.example/b?sig=1"
        );
        assert!(base.join("http://r:5000@evil/x").is_err());
        assert!(base.join("//u@evil/x").is_err());
        assert_eq!(
            Url::parse("http://r/v2/x?sig=secret").unwrap().path_only(),
            "/v2/x"
        );
    }
}
