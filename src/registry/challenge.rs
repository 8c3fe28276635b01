//! Parsing `WWW-Authenticate` challenges, `Link` headers and `Retry-After`.
//!
//! Header values come from the network: every parser here takes any text, never
//! panics, and gives up (dropping what it cannot read) rather than guess.

use std::time::{Duration, SystemTime};

use ureq::http::Response;
use ureq::Body;

/// One authentication challenge a registry offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic authentication; `realm` is empty when the server gave none.
    Basic {
        /// The protection space.
        realm: String,
    },
    /// A bearer token to fetch from `realm` (the docker token protocol).
    Bearer {
        /// The token endpoint's URL, as the server gave it.
        realm: String,
        /// The `service` parameter to pass to the token endpoint.
        service: Option<String>,
        /// The `scope` the request needs (may hold several scopes, space-separated).
        scope: Option<String>,
        /// Why a token was refused (`invalid_token`, `insufficient_scope`).
        error: Option<String>,
    },
}

/// Every challenge of a WWW-Authenticate header value (RFC 7235: several challenges
/// may be comma-separated; auth-params are token=token or token=quoted-string with
/// backslash escapes; scheme names are case-insensitive). Unknown schemes are skipped.
///
/// Parameter names are case-insensitive too; of a repeated parameter the first counts.
/// An unquoted value may hold any character but whitespace, `,` and `"` (some servers
/// send `realm=https://...` unquoted). A Bearer challenge without a realm is skipped:
/// there is nowhere to fetch a token from. At a syntax error (an unterminated quoted
/// string, a control character) the challenge being read is dropped and parsing stops.
pub(crate) fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let mut cursor = Cursor::new(value);
    let mut challenges = Vec::new();
    loop {
        cursor.skip_list_separators();
        if cursor.at_end() {
            break;
        }
        let Some(scheme) = cursor.token() else {
            break;
        };
        let Some(params) = auth_params(&mut cursor) else {
            break;
        };
        challenges.extend(challenge(scheme, params));
    }
    challenges
}

/// The URL of the rel="next" link of a `Link` header (`<url>; rel="next"`, several
/// links comma-separated), as given (may be relative).
///
/// `rel` may list several relation types (`rel="next last"`) and is compared
/// case-insensitively. An empty target (`<>`, the same page again) is ignored.
pub(crate) fn next_link(value: &str) -> Option<String> {
    let mut cursor = Cursor::new(value);
    loop {
        cursor.skip_list_separators();
        if !cursor.eat(b'<') {
            return None;
        }
        let url = cursor.until(b'>')?;
        cursor.pos += 1;
        let mut rel: Option<String> = None;
        loop {
            cursor.skip_ows();
            if !cursor.eat(b';') {
                break;
            }
            cursor.skip_ows();
            let name = cursor.token()?;
            cursor.skip_ows();
            let value = if cursor.eat(b'=') {
                cursor.skip_ows();
                cursor.value(b";")?
            } else {
                String::new()
            };
            if rel.is_none() && name.eq_ignore_ascii_case("rel") {
                rel = Some(value);
            }
        }
        if !(cursor.at_end() || cursor.peek() == Some(b',')) {
            return None;
        }
        let is_next = rel.is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next && !url.is_empty() {
            return Some(url.to_string());
        }
    }
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP-date (any of
/// the three forms RFC 9110 has recipients accept, read by `httpdate`), relative to
/// `now`; past dates give zero. Caps at `max`. Anything else gives `None`.
pub(crate) fn retry_after(value: &str, now: SystemTime, max: Duration) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only too many of them fails to parse, and that is a long wait.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(max));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(max))
}

/// The challenge for `scheme` and its parameters, if it is one dockhand can answer.
fn challenge(scheme: &str, params: Vec<(String, String)>) -> Option<Challenge> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic {
            realm: get("realm").unwrap_or_default(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm").filter(|realm| !realm.is_empty())?;
        Some(Challenge::Bearer {
            realm,
            service: get("service"),
            scope: get("scope"),
            error: get("error"),
        })
    } else {
        None
    }
}

/// The auth-params (or token68, which is dropped) after a scheme, leaving the cursor
/// at the start of the next challenge. `None` on a syntax error.
fn auth_params(cursor: &mut Cursor) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    if !(cursor.at_end() || matches!(cursor.peek(), Some(b' ' | b'\t' | b','))) {
        return None;
    }
    cursor.skip_ows();
    if cursor.at_end() || cursor.peek() == Some(b',') {
        return Some(params);
    }
    let mut first = true;
    loop {
        let start = cursor.pos;
        let name = cursor.token();
        cursor.skip_ows();
        let is_param =
            name.is_some() && cursor.peek() == Some(b'=') && cursor.peek_at(1) != Some(b'=');
        match name {
            Some(name) if is_param => {
                cursor.pos += 1;
                cursor.skip_ows();
                let value = cursor.value(b"")?;
                params.push((name.to_ascii_lowercase(), value));
            }
            _ if first => {
                // token68 (`Negotiate YII...==`): the whole item, which we do not use.
                cursor.pos = start;
                while !cursor.at_end() && !matches!(cursor.peek(), Some(b',' | b' ' | b'\t')) {
                    cursor.pos += 1;
                }
            }
            // A token not followed by `=`: the scheme of the next challenge.
            _ => {
                cursor.pos = start;
                return Some(params);
            }
        }
        first = false;
        cursor.skip_ows();
        if cursor.at_end() {
            return Some(params);
        }
        if !cursor.eat(b',') {
            return None;
        }
        cursor.skip_list_separators();
        if cursor.at_end() {
            return Some(params);
        }
    }
}

/// A position in a header value. Every delimiter is ASCII, so the positions it stops
/// at are always character boundaries.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.as_bytes().get(self.pos + ahead).copied()
    }

    /// Consume `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Skip optional whitespace (spaces and tabs).
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skip whitespace and commas (a list may have empty elements).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    /// A token (RFC 9110 `1*tchar`), if one is next.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.text[start..self.pos])
    }

    /// The text up to (not including) `byte`, leaving the cursor on it; `None` if it
    /// never comes.
    fn until(&mut self, byte: u8) -> Option<&'a str> {
        let start = self.pos;
        let len = self.text.as_bytes()[start.min(self.text.len())..]
            .iter()
            .position(|&b| b == byte)?;
        self.pos = start + len;
        Some(&self.text[start..self.pos])
    }

    /// A parameter value: a quoted-string (unescaped), or an unquoted run of anything
    /// but whitespace, `,`, `"`, control characters and the bytes in `stop`.
    fn value(&mut self, stop: &[u8]) -> Option<String> {
        if self.eat(b'"') {
            return self.quoted_rest();
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| {
            !(b == b',' || b == b'"' || b == b' ' || b.is_ascii_control() || stop.contains(&b))
        }) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.text[start..self.pos].to_string())
    }

    /// The rest of a quoted-string whose opening quote is consumed, unescaped.
    fn quoted_rest(&mut self) -> Option<String> {
        let mut bytes = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let escaped = self.peek().filter(|&e| !is_ctl(e))?;
                    self.pos += 1;
                    bytes.push(escaped);
                }
                b if is_ctl(b) => return None,
                b => bytes.push(b),
            }
        }
        // Only ASCII bytes were dropped, so this is valid UTF-8; lossy never loses.
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// RFC 9110 `tchar`: the characters a token is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A control character other than horizontal tab (not allowed in a quoted-string).
fn is_ctl(b: u8) -> bool {
    b != b'\t' && b.is_ascii_control()
}

/// A header's value as text.
pub(crate) fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
            error: None,
        }
    }

    fn basic(realm: &str) -> Challenge {
        Challenge::Basic {
            realm: realm.into(),
        }
    }

    #[test]
    fn docker_hub_bearer() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_www_authenticate(header),
            [bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/busybox:pull")
            )]
        );
    }

    #[test]
    fn distribution_insufficient_scope() {
        let header = r#"Bearer realm="https://registry.example/auth",service="registry.example",scope="repository:team/app:pull,push",error="insufficient_scope""#;
        assert_eq!(
            parse_www_authenticate(header),
            [Challenge::Bearer {
                realm: "https://registry.example/auth".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:team/app:pull,push".into()),
                error: Some("insufficient_scope".into()),
            }]
        );
    }

    #[test]
    fn commas_inside_quotes_and_several_scopes() {
        let header =
            r#"Bearer scope="repository:a:pull,push repository:b:pull", realm="https://r/t""#;
        assert_eq!(
            parse_www_authenticate(header),
            [bearer(
                "https://r/t",
                None,
                Some("repository:a:pull,push repository:b:pull")
            )]
        );
    }

    #[test]
    fn ghcr_and_quay_shapes() {
        let ghcr = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#;
        assert_eq!(
            parse_www_authenticate(ghcr),
            [bearer(
                "https://ghcr.io/token",
                Some("ghcr.io"),
                Some("repository:user/image:pull")
            )]
        );
        // Scope-less challenge on /v2/ (ghcr, quay, most registries).
        let v2 = r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#;
        assert_eq!(
            parse_www_authenticate(v2),
            [bearer("https://quay.io/v2/auth", Some("quay.io"), None)]
        );
    }

    #[test]
    fn basic_realm() {
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="Registry Realm""#),
            [basic("Registry Realm")]
        );
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="x", charset="UTF-8""#),
            [basic("x")]
        );
        assert_eq!(parse_www_authenticate("Basic"), [basic("")]);
    }

    #[test]
    fn case_insensitive_scheme_and_names() {
        assert_eq!(
            parse_www_authenticate(r#"BEARER Realm="https://a/t", SERVICE=svc"#),
            [bearer("https://a/t", Some("svc"), None)]
        );
        assert_eq!(parse_www_authenticate("bAsIc REALM=r"), [basic("r")]);
    }

    #[test]
    fn several_challenges_in_one_header() {
        let header = r#"Negotiate, Basic realm="basic realm", Bearer realm="https://a/t",service="s",scope="repository:x:pull", Digest realm="d", nonce="n""#;
        assert_eq!(
            parse_www_authenticate(header),
            [
                basic("basic realm"),
                bearer("https://a/t", Some("s"), Some("repository:x:pull"))
            ]
        );
        // A token68 challenge first, then one with params.
        let header = r#"Negotiate YII+/x==, Basic realm="r""#;
        assert_eq!(parse_www_authenticate(header), [basic("r")]);
        // Bare scheme, then Bearer.
        assert_eq!(
            parse_www_authenticate("Basic, Bearer realm=https://a/t"),
            [basic(""), bearer("https://a/t", None, None)]
        );
    }

    #[test]
    fn whitespace_and_empty_list_elements() {
        let header = " ,  Bearer   realm = \"https://a/t\" ,, service\t=\t\"s\" ,";
        assert_eq!(
            parse_www_authenticate(header),
            [bearer("https://a/t", Some("s"), None)]
        );
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let header = r#"Basic realm="say \"hi\" \\ \o/""#;
        assert_eq!(parse_www_authenticate(header), [basic(r#"say "hi" \ o/"#)]);
        assert_eq!(
            parse_www_authenticate("Basic realm=\"caf\u{e9} \\\u{e9}\""),
            [basic("caf\u{e9} \u{e9}")]
        );
    }

    #[test]
    fn first_of_repeated_params_counts() {
        assert_eq!(
            parse_www_authenticate(r#"Bearer realm="https://a/1", realm="https://b/2""#),
            [bearer("https://a/1", None, None)]
        );
    }

    #[test]
    fn bearer_without_realm_is_skipped() {
        assert_eq!(
            parse_www_authenticate(r#"Bearer service="s", Basic realm="r""#),
            [basic("r")]
        );
        assert_eq!(parse_www_authenticate(r#"Bearer realm="""#), []);
        assert_eq!(parse_www_authenticate("Bearer"), []);
    }

    #[test]
    fn syntax_errors_drop_the_challenge_and_stop() {
        // Unterminated quoted string: a truncated realm must not be used.
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="a", Bearer realm="https://auth.docker.io/tok"#),
            [basic("a")]
        );
        assert_eq!(
            parse_www_authenticate("Bearer realm=\"a\nb\""),
            [],
            "control character in a quoted string"
        );
        assert_eq!(parse_www_authenticate("Bearer realm=\"x\"junk"), []);
        assert_eq!(parse_www_authenticate("Bearer\"x\""), []);
        assert_eq!(parse_www_authenticate(r#"Bearer realm="\"#), []);
        assert_eq!(parse_www_authenticate(r#"Bearer realm=,service=s"#), []);
        assert_eq!(parse_www_authenticate(""), []);
        assert_eq!(parse_www_authenticate("   ,, "), []);
        assert_eq!(parse_www_authenticate("=== \"\""), []);
        assert_eq!(parse_www_authenticate("/v2/"), []);
    }

    #[test]
    fn next_link_shapes() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link("<https://r/v2/x/tags/list?n=100&last=v1>;rel=next").as_deref(),
            Some("https://r/v2/x/tags/list?n=100&last=v1")
        );
        let several =
            r#"</first?a=1,2>; rel="prev", </p?last=a,b>; title="x, y; z"; rel="last NEXT""#;
        assert_eq!(next_link(several).as_deref(), Some("/p?last=a,b"));
        assert_eq!(
            next_link(r#"</a>; rel="prev", </b>; rel=next"#).as_deref(),
            Some("/b")
        );
        // Only the first rel counts; a parameter without a value is allowed.
        assert_eq!(next_link(r#"</a>; rel="prev"; rel="next""#), None);
        assert_eq!(
            next_link(r#"</a>; crossorigin; rel=next"#).as_deref(),
            Some("/a")
        );
        assert_eq!(next_link(r#"</a>; rel="nextpage""#), None);
        assert_eq!(next_link(r#"<>; rel="next""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link(r#"</a; rel="next""#), None);
        assert_eq!(next_link(r#"/a; rel="next""#), None);
        assert_eq!(next_link(r#"</a>; rel="next"#), None);
        assert_eq!(next_link(r#"</a> junk; rel="next""#), None);
    }

    const DATE_1994: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const LONG: Duration = Duration::from_secs(1_000_000_000_000);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        let max = Duration::from_secs(300);
        assert_eq!(retry_after("120", now, max), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0\t", now, max), Some(Duration::ZERO));
        assert_eq!(retry_after("3600", now, max), Some(max));
        assert_eq!(retry_after(&"9".repeat(40), now, max), Some(max));
        for bad in ["", " ", "-1", "+5", "1.5", "1e3", "5 s", "0x10", "١٢"] {
            assert_eq!(retry_after(bad, now, max), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_dates() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            retry_after(date, at(DATE_1994 - 90), LONG),
            Some(Duration::from_secs(90))
        );
        assert_eq!(retry_after(date, at(DATE_1994), LONG), Some(Duration::ZERO));
        let padded = format!(" {date}\t");
        assert_eq!(
            retry_after(&padded, at(DATE_1994 - 1), LONG),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(date, at(DATE_1994 + 5), LONG),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(date, at(0), Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
        // Sub-second `now`: the remaining fraction counts.
        let now = at(DATE_1994 - 2) + Duration::from_millis(250);
        assert_eq!(
            retry_after(date, now, LONG),
            Some(Duration::from_millis(1750))
        );
        // `now` before the epoch.
        let now = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:05 GMT", now, LONG),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH, LONG),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn http_dates() {
        let cases = [
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_600),
            ("Wed, 01 Mar 2000 00:00:00 GMT", 951_868_800),
            ("Sat, 29 Feb 2020 00:00:00 GMT", 1_582_934_400),
            ("Tue, 19 Jan 2038 03:14:08 GMT", 2_147_483_648),
            ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799),
            // The obsolete forms RFC 9110 has recipients accept too.
            ("Sunday, 06-Nov-94 08:49:37 GMT", DATE_1994),
            ("Sun Nov  6 08:49:37 1994", DATE_1994),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                retry_after(text, UNIX_EPOCH, LONG),
                Some(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for bad in [
            "Sun, 29 Feb 1900 00:00:00 GMT",
            "Sun, 31 Apr 2020 00:00:00 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,06 Nov 1994 08:49:37 GMT ",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Nov 19x4 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GM\u{e9}",
            // The day name must match the date.
            "Mon, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, SystemTime::now(), LONG), None, "{bad}");
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn exercise(text: &str) {
        for challenge in parse_www_authenticate(text) {
            if let Challenge::Bearer { realm, .. } = challenge {
                assert!(!realm.is_empty(), "{text:?}");
            }
        }
        if let Some(url) = next_link(text) {
            assert!(!url.is_empty() && !url.contains('>'), "{text:?}");
        }
        let max = Duration::from_secs(60);
        if let Some(delay) = retry_after(text, SystemTime::now(), max) {
            assert!(delay <= max, "{text:?}");
        }
    }

    #[test]
    fn no_panic_on_arbitrary_input() {
        let samples = [
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
            r#"Basic realm="a \"b\" c", Bearer realm=x,error="insufficient_scope", Negotiate YII=="#,
            r#"</v2/_catalog?last=b&n=2>; rel="next", <x>; rel=prev"#,
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "caf\u{e9}, \u{1f600}=\"\u{1f600}\"",
        ];
        // Every truncation and every single-byte change of real shapes.
        for sample in samples {
            for end in 0..=sample.len() {
                if let Some(prefix) = sample.get(..end) {
                    exercise(prefix);
                }
                if let Some(suffix) = sample.get(end..) {
                    exercise(suffix);
                }
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for _ in 0..500 {
                let mut bytes = sample.as_bytes().to_vec();
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
                exercise(&String::from_utf8_lossy(&bytes));
            }
        }
        // Random strings over an alphabet rich in delimiters, and random bytes.
        let alphabet: Vec<char> = " \t,;=\"\\<>/:aBr1\u{e9}\u{0}\n".chars().collect();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..5000 {
            let len = rng.below(40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            exercise(&text);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            exercise(&String::from_utf8_lossy(&bytes));
        }
    }
}
