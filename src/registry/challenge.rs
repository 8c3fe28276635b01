//! Parsing `WWW-Authenticate` challenges, `Link` headers and `Retry-After`.
//! (Placeholder until the full parser lands.)
#![allow(dead_code)]

/// One authentication challenge.
pub(crate) enum Challenge {
    /// HTTP Basic.
    Basic {
        /// The realm.
        realm: String,
    },
    /// A bearer token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The service to name.
        service: Option<String>,
        /// The scope asked for.
        scope: Option<String>,
        /// The error, when a token lacked a right.
        error: Option<String>,
    },
}

/// Every challenge of a header value.
pub(crate) fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let param = |name: &str| {
        let key = format!("{name}=\"");
        value.find(&key).map(|i| {
            let rest = &value[i + key.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_string()
        })
    };
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("bearer") {
        vec![Challenge::Bearer {
            realm: param("realm").unwrap_or_default(),
            service: param("service"),
            scope: param("scope"),
            error: param("error"),
        }]
    } else if lower.starts_with("basic") {
        vec![Challenge::Basic {
            realm: param("realm").unwrap_or_default(),
        }]
    } else {
        Vec::new()
    }
}

/// The rel="next" URL of a `Link` header.
pub(crate) fn next_link(value: &str) -> Option<String> {
    let start = value.find('<')? + 1;
    let end = value[start..].find('>')? + start;
    value[end..]
        .contains("rel=\"next\"")
        .then(|| value[start..end].to_string())
}

/// The delay a `Retry-After` header asks for (delta-seconds only here).
pub(crate) fn retry_after(
    value: &str,
    _now: std::time::SystemTime,
    max: std::time::Duration,
) -> Option<std::time::Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(std::time::Duration::from_secs(secs).min(max))
}
