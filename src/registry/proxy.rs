//! Proxies from the environment, decided per request: `HTTPS_PROXY` for `https://`
//! targets, `HTTP_PROXY` for `http://` ones, `ALL_PROXY` for either when its own is
//! unset (each in upper or lower case, upper first, as Go reads them), and `NO_PROXY`
//! for the hosts reached directly. ureq's own reading of the environment is not used:
//! it takes the first proxy set whatever the target's scheme.
//!
//! `NO_PROXY` is a comma-separated list: `*` (no proxy at all), a host name (it and
//! its subdomains; a leading `.` or `*.` changes nothing), an IP address, either with
//! `:PORT` (only that port), or a CIDR block (`10.0.0.0/8`). `localhost` and loopback
//! addresses (127.0.0.0/8, ::1) are always reached directly, as Go (and so Docker,
//! podman and skopeo) does: through a proxy they would name the proxy's own host, and a
//! local registry's credentials would go there.
//!
//! A proxy is reached with `CONNECT` (ureq's only HTTP proxy mode), for a plain-HTTP
//! registry too. Credentials in a proxy URL are sent to the proxy only, as
//! `Proxy-Authorization`, and never shown: messages name a proxy as
//! `scheme://host:port`.

use std::net::IpAddr;

use ureq::http::Uri;

use crate::error::{Error, Result};
use crate::text::shown;

/// The proxies the environment names, read once per client.
#[derive(Clone, Default)]
pub(crate) struct Proxies {
    https: Option<Named>,
    http: Option<Named>,
    no_proxy: Vec<NoProxy>,
}

/// A proxy and how messages name it.
#[derive(Clone)]
struct Named {
    proxy: ureq::Proxy,
    shown: String,
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxy {
    /// `*`: nothing goes through a proxy.
    All,
    /// A host (and its subdomains), on any port or on one.
    Host { name: String, port: Option<u16> },
    /// An address block.
    Cidr { net: IpAddr, bits: u8 },
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxies")
            .field("https", &self.https.as_ref().map(|p| &p.shown))
            .field("http", &self.http.as_ref().map(|p| &p.shown))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Proxies {
    /// The proxies of this process's environment.
    pub(crate) fn from_env() -> Result<Proxies> {
        Proxies::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The proxies `get` names (an environment variable's value by its name).
    pub(crate) fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Proxies> {
        let var = |upper: &str| -> Option<(String, String)> {
            [upper.to_string(), upper.to_ascii_lowercase()]
                .into_iter()
                .find_map(|name| {
                    get(&name)
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (name, v))
                })
        };
        let all = var("ALL_PROXY");
        let proxy = |upper: &str| -> Result<Option<Named>> {
            var(upper)
                .or_else(|| all.clone())
                .map(|(name, value)| parse_proxy(&name, value.trim()))
                .transpose()
        };
        Ok(Proxies {
            https: proxy("HTTPS_PROXY")?,
            http: proxy("HTTP_PROXY")?,
            no_proxy: var("NO_PROXY")
                .map(|(_, value)| value.split(',').filter_map(parse_no_proxy).collect())
                .unwrap_or_default(),
        })
    }

    /// The proxy a request to `uri` goes through, if any.
    pub(crate) fn for_uri(&self, uri: &Uri) -> Option<ureq::Proxy> {
        self.named_for(uri).map(|n| n.proxy.clone())
    }

    /// ` (through the proxy scheme://host:port)` when a request to `uri` goes through
    /// one, for messages; empty otherwise.
    pub(crate) fn via(&self, uri: &Uri) -> String {
        self.named_for(uri)
            .map(|n| format!(" (through the proxy {})", n.shown))
            .unwrap_or_default()
    }

    fn named_for(&self, uri: &Uri) -> Option<&Named> {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if self.bypassed(host, port) {
            return None;
        }
        if https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }
    }

    /// Whether `host:port` is reached directly: a loopback host, or one `NO_PROXY`
    /// names.
    fn bypassed(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip: Option<IpAddr> = host.parse().ok();
        if host == "localhost"
            || host.ends_with(".localhost")
            || ip.is_some_and(|ip| ip.is_loopback())
        {
            return true;
        }
        self.no_proxy.iter().any(|entry| match entry {
            NoProxy::All => true,
            NoProxy::Host { name, port: p } => {
                p.is_none_or(|p| p == port)
                    && (host == *name
                        || (ip.is_none()
                            && host.len() > name.len()
                            && host.ends_with(name.as_str())
                            && host.as_bytes()[host.len() - name.len() - 1] == b'.'))
            }
            NoProxy::Cidr { net, bits } => ip.is_some_and(|ip| in_block(ip, *net, *bits)),
        })
    }
}

/// What to check when a request through a proxy failed to connect (empty for other
/// failures).
pub(crate) fn connection_hint(e: &ureq::Error) -> String {
    let refused = match e {
        ureq::Error::ConnectionFailed | ureq::Error::ConnectProxyFailed(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    };
    if refused {
        " (check the proxy: it comes from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY, and \
         NO_PROXY lists the hosts reached directly)"
            .to_string()
    } else {
        String::new()
    }
}

/// `value` of the variable `name` as a proxy: `[http://|https://][USER:PASS@]HOST[:PORT]`.
fn parse_proxy(name: &str, value: &str) -> Result<Named> {
    let shown_proxy = redacted(value);
    let bad = |why: &str| {
        Error::Usage(format!(
            "{name} names the proxy {}: {why}",
            shown(&shown_proxy)
        ))
    };
    let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        None | Some("http") => {}
        // The TLS session to an https:// proxy would be set up with the registry's
        // TLS settings (its CAs, its client pair, its checks turned off when the
        // registry's are): refused rather than trusted that way.
        Some("https") => {
            return Err(bad(
                "an https:// proxy is not supported: give its http:// address (HTTPS to a registry is tunnelled through it with CONNECT, end to end)",
            ))
        }
        Some(_) => return Err(bad("only http:// proxies are supported")),
    }
    // ureq's words could quote the value, credentials included: not shown.
    let proxy = ureq::Proxy::new(value)
        .map_err(|_| bad("not a proxy address ([http://][USER:PASSWORD@]HOST[:PORT])"))?;
    Ok(Named {
        proxy,
        shown: shown_proxy,
    })
}

/// A proxy URL as messages show it: `scheme://host:port`, without credentials or a
/// path.
pub(crate) fn redacted(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").unwrap_or(("http", value));
    // Credentials end at the last `@`, whatever they hold (`/`, `?` and `#` are common
    // in generated passwords): everything before it is left out.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let has_port = match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        format!("{scheme}://{host_port}")
    } else {
        format!("{scheme}://{host_port}:{default_port}")
    }
}

/// One `NO_PROXY` entry; `None` for an empty or unusable one.
fn parse_no_proxy(entry: &str) -> Option<NoProxy> {
    let entry = entry.trim().to_ascii_lowercase();
    if entry.is_empty() {
        return None;
    }
    if entry == "*" {
        return Some(NoProxy::All);
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let net: IpAddr = net.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(NoProxy::Cidr { net, bits });
    }
    let entry = entry
        .strip_prefix("*.")
        .or_else(|| entry.strip_prefix('.'))
        .unwrap_or(&entry);
    let (name, port) = if let Some(rest) = entry.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (addr, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (addr.to_string(), port)
    } else if entry.matches(':').count() == 1 {
        let (host, port) = entry.split_once(':')?;
        (host.to_string(), Some(port.parse().ok()?))
    } else {
        (entry.to_string(), None)
    };
    let name = name.trim_end_matches('.').to_string();
    (!name.is_empty()).then_some(NoProxy::Host { name, port })
}

/// Whether `ip` lies in `net/bits`.
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Result<Proxies> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_lookup(&move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn via(p: &Proxies, url: &str) -> String {
        p.via(&url.parse::<Uri>().unwrap())
    }

    #[test]
    fn each_scheme_takes_its_own_variable_then_all_proxy() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("http_proxy", "plain:8080"),
        ])
        .unwrap();
        assert_eq!(
            via(&p, "https://r.example/v2/"),
            " (through the proxy http://secure:3128)"
        );
        assert_eq!(
            via(&p, "http://r.example/v2/"),
            " (through the proxy http://plain:8080)"
        );
        let p = proxies(&[
            ("all_proxy", "http://every:1"),
            ("HTTP_PROXY", "http://plain:2"),
        ])
        .unwrap();
        assert_eq!(
            via(&p, "https://r.example/"),
            " (through the proxy http://every:1)"
        );
        assert_eq!(
            via(&p, "http://r.example/"),
            " (through the proxy http://plain:2)"
        );
        // Upper case first, as Go reads them; an empty value is unset.
        let p = proxies(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
            ("HTTP_PROXY", " "),
        ])
        .unwrap();
        assert_eq!(
            via(&p, "https://r.example/"),
            " (through the proxy http://upper:1)"
        );
        assert_eq!(via(&p, "http://r.example/"), "");
        assert!(proxies(&[])
            .unwrap()
            .for_uri(&"https://x/".parse().unwrap())
            .is_none());
    }

    #[test]
    fn no_proxy_entries() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            (
                "no_proxy",
                " corp.example, .internal ,127.0.0.1, registry.example:5000,10.0.0.0/8,[::1],*.wild",
            ),
        ])
        .unwrap();
        let direct = |url: &str| via(&p, url).is_empty();
        assert!(direct("https://corp.example/"));
        assert!(direct("https://a.b.corp.example/"));
        assert!(!direct("https://notcorp.example/"));
        assert!(direct("https://x.internal/"));
        assert!(direct("https://internal/"));
        assert!(direct("https://127.0.0.1:5000/"));
        assert!(!direct("https://192.0.2.9:5000/"));
        // Loopback is never proxied, listed or not.
        let loopback = proxies(&[("HTTPS_PROXY", "http://proxy:3128")]).unwrap();
        for url in [
            "https://127.0.0.2:5000/",
            "https://localhost/",
            "https://[::1]/",
        ] {
            assert_eq!(via(&loopback, url), "", "{url}");
        }
        assert!(direct("https://registry.example:5000/"));
        assert!(!direct("https://registry.example/"));
        assert!(direct("https://10.1.2.3/"));
        assert!(!direct("https://11.1.2.3/"));
        assert!(direct("https://[::1]:5000/"));
        assert!(direct("https://a.wild/"));
        assert!(!direct("https://example.com/"));
        let all = proxies(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "*")]).unwrap();
        assert!(via(&all, "https://example.com/").is_empty());
    }

    #[test]
    fn credentials_are_never_shown() {
        let p = proxies(&[("HTTPS_PROXY", "http://user:s3cret@proxy.example:3128/")]).unwrap();
        let debug = format!("{p:?}");
        assert!(!debug.contains("s3cret") && debug.contains("http://proxy.example:3128"));
        assert_eq!(
            via(&p, "https://r/"),
            " (through the proxy http://proxy.example:3128)"
        );
        let err = proxies(&[("HTTPS_PROXY", "socks5://user:s3cret@proxy:1080")])
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            err.contains("HTTPS_PROXY") && err.contains("socks5://proxy:1080"),
            "{err}"
        );
        let err = proxies(&[("HTTP_PROXY", "http://u:s3cret@[bad")])
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("s3cret") && !err.contains('\n'), "{err}");
        assert_eq!(redacted("proxy"), "http://proxy:80");
        for password in ["s3/cret", "s3#cret", "s3?cret", "s3@cret"] {
            let value = format!("http://bob:{password}@proxy.example:3128");
            assert_eq!(redacted(&value), "http://proxy.example:3128");
            let err = proxies(&[("HTTPS_PROXY", value.as_str())])
                .map(drop)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!err.contains("s3") && !err.contains("cret"), "{err}");
        }
        let err = proxies(&[("HTTPS_PROXY", "https://u:p@proxy.example:443")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("https:// proxy is not supported"), "{err}");
        assert_eq!(redacted("https://u:p@[::1]/x"), "https://[::1]:443");
    }
}
