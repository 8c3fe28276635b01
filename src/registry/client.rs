//! HTTP for the distribution API: authentication (Basic, bearer tokens from the
//! `WWW-Authenticate` challenge, cached per scope and renewed on 401), retries with
//! backoff, bounded reads, and errors that never show a credential.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use ureq::http::{Method, Request, Response};
use ureq::{Agent, Body, SendBody};

pub(crate) use super::challenge::header;
use super::challenge::{parse_www_authenticate, Challenge};
use super::credentials::Credentials;
use super::origin::{Origin, Scheme, Url};
use super::retry::{Exchange, RetryPolicy};
use super::RegistryOptions;
use crate::error::Setting;
use crate::error::{Error, Result};
use crate::text::shown;

/// Every manifest type dockhand reads, for `Accept`: without the OCI types
/// distribution answers 404 for an OCI manifest, and without the Docker v2 types it
/// converts a v2 manifest to schema 1 (another digest).
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// Largest manifest or config read into memory (containerd's limit).
pub(crate) const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Largest token response or error body read.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// Most redirects followed for one request.
const MAX_REDIRECTS: u32 = 10;

/// Pull or push rights on a repository, as a token scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scope(String);

impl Scope {
    /// Pull rights on `repository`.
    pub(crate) fn pull(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull"))
    }
    /// Pull and push rights on `repository`.
    pub(crate) fn push(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push"))
    }
    /// The right to delete from `repository`.
    pub(crate) fn delete(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:delete"))
    }
    /// The right to list the registry's repositories (`/v2/_catalog`).
    pub(crate) fn catalog() -> Scope {
        Scope("registry:catalog:*".to_string())
    }
    /// Pull and push rights on `repository` and pull rights on `from` (a
    /// cross-repository mount).
    pub(crate) fn push_mounting(repository: &str, from: &str) -> Scope {
        Scope(format!(
            "repository:{repository}:pull,push repository:{from}:pull"
        ))
    }
}

/// How to authenticate, learnt from the registry's challenges.
#[derive(Default)]
struct AuthState {
    /// The registry asked for Basic credentials.
    basic: bool,
    /// Tokens by the scopes they were asked for.
    tokens: HashMap<String, String>,
}

/// One registry, reached over HTTP(S).
pub(crate) struct Client {
    agent: Agent,
    /// The agent for every other origin: no client certificate.
    agent_elsewhere: Agent,
    /// The registry as references name it, for messages.
    registry: String,
    /// Where the registry's API answers over HTTPS: the one origin credentials and
    /// tokens go to (besides the token realm the registry's own challenge names),
    /// unless `plain` finds that the registry speaks plain HTTP.
    origin: Origin,
    /// With certificate checks off: the registry's plain HTTP origin, which its first
    /// request finds out whether to use.
    plain: Option<PlainHttp>,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// How requests are retried.
    retry: RetryPolicy,
    /// A mirror: until it has answered once, its requests get one attempt, so that a
    /// dead mirror costs one connection and the pull goes on to the next endpoint.
    fail_fast_until_answered: bool,
    /// Some request got an HTTP answer (any status).
    answered: std::sync::atomic::AtomicBool,
    /// How long a read may make no progress, and the stretch over which a body must
    /// keep up `min_rate` (zero: wait forever, no floor).
    read_timeout: Duration,
    /// The floor of a body's rate, in bytes a second.
    min_rate: u64,
    /// The client certificate file presented, escaped (for messages).
    client_cert: Option<String>,
    /// The proxies of the environment, chosen per request (`proxy.rs`).
    proxies: super::proxy::Proxies,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("origin", &self.origin().to_string())
            .finish()
    }
}

/// A request body that can be sent again on a retry.
#[derive(Clone, Copy)]
pub(crate) enum Payload<'a> {
    /// No body.
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
}

/// A registry reached with certificate checks off, which may speak plain HTTP (as
/// skopeo's `--tls-verify=false` and an `insecure` registry allow). Which it speaks is
/// found by its first request rather than by a probe of its own: that request goes
/// over plain HTTP, without credentials (none are learnt before an answer), and an
/// answer from a server speaking HTTP settles it (and is that request's answer);
/// a failure or the answer a TLS server gives a plain request settles HTTPS, and
/// the request is sent again over HTTPS. Plain HTTP goes first, as the probe did,
/// because a plain server may wait for a request line in the middle of a TLS
/// handshake. A first request with a body (or other than `GET`/`HEAD`) is not sent
/// in clear to a server that may speak TLS: `/v2/` is asked first, as before.
struct PlainHttp {
    /// `http://HOST:PORT`.
    origin: Origin,
    /// Settled: `true` for plain HTTP, `false` for HTTPS.
    spoken: OnceLock<bool>,
    /// Held by the request that settles it, so that the others wait for its answer
    /// rather than each asking.
    deciding: Mutex<()>,
}

impl Client {
    /// A client for the registry at `api_host` (named `registry` in messages). With
    /// `tls_verify` false, the registry may also be spoken to over plain HTTP, as
    /// skopeo allows: its first request finds out which it speaks (see
    /// [`PlainHttp`]), with no request of its own.
    pub(crate) fn connect(
        registry: &str,
        api_host: &str,
        credentials: Option<Credentials>,
        options: &RegistryOptions,
    ) -> Result<Client> {
        // The system's roots and the registry's certs.d folder (or the cert dir).
        let trust = super::trust::load(registry, options)?;
        // A read or write that makes no progress for `read_timeout` fails the attempt
        // (the body rate floor is Fetch's); redirects are followed by `send`, which
        // decides per hop whether credentials go along.
        let idle = Some(options.read_timeout).filter(|t| !t.is_zero());
        let agent_with = |tls: ureq::tls::TlsConfig| -> Agent {
            Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls)
                .user_agent(concat!("dockhand/", env!("CARGO_PKG_VERSION")))
                .accept("")
                .max_redirects(0)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(300)))
                .timeout_per_read(idle)
                .timeout_per_write(idle)
                .proxy(None) // chosen per request, as `proxy.rs` decides
                .build()
                .into()
        };
        let agent = agent_with(trust.tls);
        let agent_elsewhere = agent_with(trust.tls_elsewhere);
        let proxies = super::proxy::Proxies::from_env()?;
        let origin_over = |scheme: &str| {
            Url::parse(&format!("{scheme}://{api_host}/"))
                .map(|url| url.origin)
                .map_err(|why| Error::Usage(format!("docker://{}: {why}", shown(registry))))
        };
        let origin = origin_over("https")?;
        let plain = if options.tls_verify {
            None
        } else {
            Some(PlainHttp {
                origin: origin_over("http")?,
                spoken: OnceLock::new(),
                deciding: Mutex::new(()),
            })
        };
        Ok(Client {
            agent,
            agent_elsewhere,
            registry: registry.to_string(),
            origin,
            plain,
            credentials,
            auth: Mutex::new(AuthState::default()),
            retry: RetryPolicy::new(options),
            fail_fast_until_answered: false,
            answered: std::sync::atomic::AtomicBool::new(false),
            read_timeout: options.read_timeout,
            min_rate: options.min_rate,
            client_cert: trust.client_cert,
            proxies,
        })
    }

    /// The registry's own origin: HTTPS, or plain HTTP once its first request found
    /// that it speaks that (with certificate checks off).
    fn origin(&self) -> &Origin {
        match &self.plain {
            Some(plain) if plain.spoken.get() == Some(&true) => &plain.origin,
            _ => &self.origin,
        }
    }

    /// `url` on the origin the registry was found to speak: a URL of the registry
    /// built over HTTPS before its first answer is moved to plain HTTP when that is
    /// what it speaks. Any other URL is left as it is.
    fn settled(&self, mut url: Url) -> Url {
        if url.origin == self.origin {
            url.origin = self.origin().clone();
        }
        url
    }

    /// The registry as references name it.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// The registry's origin + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// The URL `link` (from an answer to `current`) names, when it is on the
    /// registry's own origin; `what` names it in the error otherwise.
    pub(crate) fn same_origin_link(&self, current: &str, link: &str, what: &str) -> Result<String> {
        let next = self.join(current, link, what)?;
        if next.origin != *self.origin() {
            return Err(self.error(format!(
                "{what} is on another host: {}",
                shown(&next.origin.to_string())
            )));
        }
        Ok(next.to_string())
    }

    /// The URL `reference` (from an answer to `current`) names, wherever it is;
    /// refused when it carries userinfo, a bad port or an odd host.
    pub(crate) fn join(&self, current: &str, reference: &str, what: &str) -> Result<Url> {
        let base = Url::parse(current).map_err(|why| self.error(format!("{what}: {why}")))?;
        self.settled(base).join(reference).map_err(|why| {
            self.error(format!(
                "{what} cannot be used: {why} ({})",
                shown(&cut_query(reference))
            ))
        })
    }

    /// An error about this registry.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::Registry {
            registry: shown(&self.registry),
            message: message.into(),
        }
    }

    /// Send a request with a repeatable body, authenticating as the registry asks and
    /// retrying transient failures (connection errors, 408, 429, 5xx) with backoff.
    /// Any other answer is returned as it is, for the caller to judge.
    pub(crate) fn send(
        &self,
        method: Method,
        url: &str,
        scope: &Scope,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        self.send_with(method, url, scope, headers, payload, self.policy())
    }

    /// [`Client::send`] without retries (a request whose repetition the caller
    /// decides, such as an upload chunk), renewing a token on 401 all the same.
    pub(crate) fn send_once(
        &self,
        method: Method,
        url: &str,
        scope: &Scope,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        self.send_with(
            method,
            url,
            scope,
            headers,
            payload,
            self.retry.without_retries(),
        )
    }

    fn send_with(
        &self,
        method: Method,
        url: &str,
        scope: &Scope,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        retry: RetryPolicy,
    ) -> Result<Response<Body>> {
        let mut target = Url::parse(url)
            .map_err(|why| self.error(format!("{method} {}: {why}", shown(&cut_query(url)))))?;
        // The registry's first request, with certificate checks off, finds out whether
        // it speaks plain HTTP, and may come back answered already.
        let mut answered = self.settle(&mut target, &method, headers, payload)?;
        let mut renewed = false;
        let mut redirects = 0;
        loop {
            // Credentials and tokens go to the registry's own origin only: a redirect
            // target or an upload location elsewhere gets the request without them.
            let own = target.origin == *self.origin();
            let target_text = target.to_string();
            let mut first = answered.take();
            let result = retry.run(|| {
                if let Some(outcome) = first.take() {
                    return Ok(outcome);
                }
                let mut builder = Request::builder()
                    .method(method.clone())
                    .uri(target_text.as_str());
                for (name, value) in headers {
                    builder = builder.header(*name, *value);
                }
                if own {
                    if let Some(auth) = self.authorization(scope) {
                        builder = builder.header("Authorization", auth);
                    }
                }
                self.run(builder, payload)
            })?;
            let response = match result {
                Ok(response) => response,
                Err(e) => {
                    if let Some(problem) = super::trust::problem(&e, self.client_cert.as_deref()) {
                        return Err(Error::Tls {
                            registry: shown(&self.registry),
                            problem,
                        });
                    }
                    let elsewhere = self.elsewhere(&target);
                    let via = target_text
                        .parse()
                        .map(|uri| self.proxies.via(&uri))
                        .unwrap_or_default();
                    let hint = if via.is_empty() {
                        self.connection_hint(&e)
                    } else {
                        super::proxy::connection_hint(&e)
                    };
                    return Err(self.error(format!(
                        "{method} {}{elsewhere}{via}: {e}{hint}",
                        shown(target.path_only())
                    )));
                }
            };
            let status = response.status().as_u16();
            if response.status().is_redirection()
                && status != 304
                && (method == Method::GET || method == Method::HEAD)
            {
                let Some(location) = header(&response, "location") else {
                    return Ok(response);
                };
                if redirects >= MAX_REDIRECTS {
                    return Err(self.error(format!(
                        "{method} {}: more than {MAX_REDIRECTS} redirects",
                        shown(target.path_only())
                    )));
                }
                target = target.join(location).map_err(|why| {
                    self.error(format!(
                        "{method} {}: the registry redirected to an unusable URL: {why} ({})",
                        shown(target.path_only()),
                        shown(&cut_query(location))
                    ))
                })?;
                redirects += 1;
                continue;
            }
            if status == 401 && !own {
                // Never a reason to send credentials anywhere: only the registry's own
                // challenge is followed.
                return Err(self.error(format!(
                    "{method} {}: {} answered 401 asking for credentials; the registry sent \
                     the request there, and dockhand sends credentials only to {} and the \
                     token service its own challenge names",
                    shown(target.path_only()),
                    shown(&target.origin.host_port()),
                    shown(&self.registry)
                )));
            }
            if status == 401 && !renewed {
                renewed = true;
                self.learn(&response, scope)?;
                continue;
            }
            return Ok(response);
        }
    }

    /// Before a request to `target`: when the registry may speak plain HTTP and its
    /// first answer has not yet said whether it does, send this request over plain
    /// HTTP (see [`PlainHttp`]) and settle it. `target`, a URL of the registry, is
    /// moved to the origin settled on. The answer this gave, when it is the
    /// request's own (a plain registry answered it), is returned for the caller to
    /// take as its first attempt's outcome.
    fn settle(
        &self,
        target: &mut Url,
        method: &Method,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Option<Exchange>> {
        let Some(plain) = &self.plain else {
            return Ok(None);
        };
        if target.origin != self.origin {
            return Ok(None);
        }
        if plain.spoken.get().is_none() {
            let _deciding = plain.deciding.lock().unwrap_or_else(|e| e.into_inner());
            if plain.spoken.get().is_none() {
                let answered = self.ask_over_plain_http(plain, target, method, headers, payload)?;
                if answered.is_some() {
                    *target = self.settled(target.clone());
                    return Ok(answered);
                }
            }
        }
        *target = self.settled(target.clone());
        Ok(None)
    }

    /// Send the first request over plain HTTP (a `/v2/` instead when it has a body or
    /// is no `GET` or `HEAD`), once, and settle what the registry speaks from the
    /// outcome. Returns the answer when it is the request's own, from a plain
    /// registry (a retryable answer too: it counts as the request's first attempt).
    fn ask_over_plain_http(
        &self,
        plain: &PlainHttp,
        target: &Url,
        method: &Method,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Option<Exchange>> {
        let own_request = matches!(payload, Payload::Empty)
            && (*method == Method::GET || *method == Method::HEAD);
        let (method, path, headers): (Method, &str, &[(&str, &str)]) = if own_request {
            (method.clone(), &target.path, headers)
        } else {
            (Method::GET, "/v2/", &[])
        };
        let url = Url {
            origin: plain.origin.clone(),
            path: path.to_string(),
        };
        // No credentials: none are sent before the registry's challenge.
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(url.to_string().as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let outcome = self.run(builder, Payload::Empty)?;
        let speaks_plain = match &outcome {
            Ok(answer) => answers_plain_http(answer, &url),
            // Nothing answered: nothing is settled; the request goes over HTTPS, which
            // may take another route (a proxy for HTTPS only), and the next request
            // asks again.
            Err(e) if unreachable(e) => return Ok(None),
            Err(_) => false,
        };
        let _ = plain.spoken.set(speaks_plain);
        Ok(match outcome {
            Ok(answer) if speaks_plain && own_request => Some(Ok(answer)),
            _ => None,
        })
    }

    /// ` (at HOST)` when `target` is not the registry's own origin, for messages.
    fn elsewhere(&self, target: &Url) -> String {
        if target.origin == *self.origin() {
            String::new()
        } else {
            format!(" (at {})", shown(&target.origin.host_port()))
        }
    }

    /// Send one request built by `builder` with `payload` as its body.
    fn run(&self, builder: ureq::http::request::Builder, payload: Payload<'_>) -> Result<Exchange> {
        let request = match payload {
            Payload::Empty => builder.body(SendBody::none()).map(|r| self.dispatch(r)),
            Payload::Bytes(bytes) => builder.body(bytes).map(|r| self.dispatch(r)),
        };
        request.map_err(|e| self.error(format!("building a request: {e}")))
    }

    /// Run `request` through the proxy its target's scheme and host call for; the
    /// registry's client certificate goes to its own origin only (compared parsed, as
    /// credentials are), as `Authorization` does.
    fn dispatch<S: ureq::AsSendBody>(&self, request: Request<S>) -> Exchange {
        let proxy = self.proxies.for_uri(request.uri());
        let own = Url::parse(&request.uri().to_string()).is_ok_and(|u| u.origin == *self.origin());
        let agent = if own {
            &self.agent
        } else {
            &self.agent_elsewhere
        };
        let request = agent.configure_request(request).proxy(proxy).build();
        let exchange = agent.run(request);
        if exchange.is_ok() {
            self.answered
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        exchange
    }

    /// Learn how the registry authenticates and get a token for `scope` now, so that
    /// refused credentials fail a push before anything is read or compressed.
    pub(crate) fn authenticate(&self, scope: &Scope) -> Result<()> {
        let response = self.send(Method::GET, &self.url("/v2/"), scope, &[], Payload::Empty)?;
        // A 401 here, after learning the challenge, means the credentials are refused;
        // the repository's own request says so more precisely, so it is not an error yet.
        drop(response);
        Ok(())
    }

    /// A rate floor for a body.
    pub(crate) fn pace(&self) -> Pace {
        let bytes = self
            .min_rate
            .saturating_mul(self.read_timeout.as_secs().max(1));
        Pace {
            rule: (!self.read_timeout.is_zero() && self.min_rate > 0)
                .then_some((self.read_timeout, bytes)),
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// Read a body of at most `limit` bytes, at the rate floor; more is an error.
    pub(crate) fn read_small(&self, response: &mut Response<Body>, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut body = Paced {
            inner: response.body_mut().as_reader().take(limit + 1),
            pace: self.pace(),
        };
        body.read_to_end(&mut out)
            .map_err(|e| Error::io("reading a registry's answer", e))?;
        if out.len() as u64 > limit {
            return Err(Error::Unsupported(format!(
                "a registry's answer is larger than the {limit}-byte limit"
            )));
        }
        Ok(out)
    }

    /// How long to wait for another run filling a blob that makes no progress: as
    /// long as its own attempts may take to fail (`None`: forever, as the reads do).
    pub(crate) fn stall_patience(&self) -> Option<Duration> {
        (!self.read_timeout.is_zero()).then(|| {
            self.read_timeout
                .saturating_mul(self.retry.retries().saturating_add(1))
                .saturating_add(self.retry.total_backoff())
        })
    }

    /// How this client's requests are retried.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.policy()
    }

    /// The same client for a mirror: until the mirror has answered once, each request
    /// gets one attempt (containers/image tries each endpoint once), so that a mirror
    /// nothing answers at is left for the next endpoint without the retries' backoff.
    pub(crate) fn for_mirror(mut self) -> Client {
        self.fail_fast_until_answered = true;
        self
    }

    /// The retry policy of the next request: none for a mirror that never answered.
    fn policy(&self) -> RetryPolicy {
        let unanswered = !self.answered.load(std::sync::atomic::Ordering::Relaxed);
        if self.fail_fast_until_answered && unanswered {
            self.retry.without_retries()
        } else {
            self.retry
        }
    }

    /// The `Authorization` value for a request in `scope` to the registry's own
    /// origin, if any.
    fn authorization(&self, scope: &Scope) -> Option<String> {
        let state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = state.tokens.get(&scope.0) {
            return Some(format!("Bearer {token}"));
        }
        if state.basic {
            if let Some(Credentials::Basic { username, password }) = &self.credentials {
                return Some(basic(username, password));
            }
        }
        None
    }

    /// Learn from a 401 how to authenticate, fetching a token for `scope` when the
    /// registry wants one.
    fn learn(&self, response: &Response<Body>, scope: &Scope) -> Result<()> {
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_www_authenticate)
            .collect();
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer { realm, service, .. } => Some((realm.clone(), service.clone())),
            Challenge::Basic { .. } => None,
        });
        if let Some((realm, service)) = bearer {
            let token = self.fetch_token(&realm, service.as_deref(), scope)?;
            let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            state.tokens.insert(scope.0.clone(), token);
            return Ok(());
        }
        if challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
        {
            let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            if state.basic || self.credentials.is_none() {
                // Already sent, or nothing to send: the caller sees the 401.
                return Ok(());
            }
            state.basic = true;
        }
        Ok(())
    }

    /// Ask the token endpoint `realm` for a token with `scope`, with the credentials
    /// when there are any (anonymously otherwise). `realm` comes from a challenge the
    /// registry's own origin sent (Docker Hub names a token service on another host);
    /// no redirect of the token request is followed, so the credentials go there only.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &Scope) -> Result<String> {
        let realm_url = Url::parse(realm).map_err(|why| {
            self.error(format!(
                "the registry's token endpoint {} cannot be used: {why}",
                shown(&cut_query(realm))
            ))
        })?;
        if self.credentials.is_some()
            && self.origin().scheme == Scheme::Https
            && realm_url.origin.scheme == Scheme::Http
        {
            return Err(self.error(format!(
                "the registry, reached over HTTPS, names a token endpoint over plain HTTP \
                 ({}); dockhand does not send credentials there in clear text",
                shown(&realm_url.origin.to_string())
            )));
        }
        let realm = realm_url.to_string();
        let realm = realm.as_str();
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", encode(service)));
        }
        for one in scope.0.split(' ').filter(|s| !s.is_empty()) {
            query.push(format!("scope={}", encode(one)));
        }
        let (method, url, form) = match &self.credentials {
            Some(Credentials::IdentityToken { token, .. }) => {
                // OAuth2: the refresh token is exchanged for an access token.
                let mut form = vec![
                    "grant_type=refresh_token".to_string(),
                    "client_id=dockhand".to_string(),
                    format!("refresh_token={}", encode(token)),
                ];
                form.extend(query.iter().cloned());
                (Method::POST, realm.to_string(), Some(form.join("&")))
            }
            _ => {
                let sep = if realm.contains('?') { '&' } else { '?' };
                let url = if query.is_empty() {
                    realm.to_string()
                } else {
                    format!("{realm}{sep}{}", query.join("&"))
                };
                (Method::GET, url, None)
            }
        };
        let result = self.policy().run(|| {
            let mut builder = Request::builder().method(method.clone()).uri(&url);
            if let Some(Credentials::Basic { username, password }) = &self.credentials {
                builder = builder.header("Authorization", basic(username, password));
            }
            let payload = match &form {
                Some(form) => {
                    builder = builder.header("Content-Type", "application/x-www-form-urlencoded");
                    Payload::Bytes(form.as_bytes())
                }
                None => Payload::Empty,
            };
            self.run(builder, payload)
        })?;
        match result {
            Ok(mut r) if r.status().is_success() => {
                let body = self
                    .read_small(&mut r, MAX_SMALL_BODY)
                    .map_err(|e| self.error(format!("reading a token: {e}")))?;
                #[derive(serde::Deserialize)]
                struct TokenAnswer {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let answer: TokenAnswer = serde_json::from_slice(&body)
                    .map_err(|_| self.error("the token endpoint answered no JSON token"))?;
                answer
                    .token
                    .or(answer.access_token)
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| self.error("the token endpoint answered no usable token"))
            }
            Ok(r) if r.status() == 401 || r.status() == 403 => {
                Err(self.error(if self.credentials.is_some() {
                    format!(
                        "the token endpoint refused the credentials ({})",
                        self.refused_hint()
                    )
                } else {
                    format!("authentication required ({})", self.login_hint())
                }))
            }
            Ok(r) => Err(self.error(format!(
                "the token endpoint answered HTTP {}",
                r.status().as_u16()
            ))),
            Err(e) => {
                let hint = self.connection_hint(&e);
                Err(self.error(format!("asking for a token: {e}{hint}")))
            }
        }
    }

    /// The error for an unexpected answer to `what`: its status and the registry's
    /// own error codes and messages, escaped and shortened.
    pub(crate) fn unexpected(&self, what: &str, response: &mut Response<Body>) -> Error {
        let status = response.status().as_u16();
        let body = self.read_small(response, 64 << 10).unwrap_or_default();
        let detail = registry_errors(&body);
        let hint = match status {
            401 if self.credentials.is_none() => format!(" ({})", self.login_hint()),
            401 => format!(" ({})", self.refused_hint()),
            403 => " (access denied: the account lacks the rights this needs on the repository; \
                    a push needs write access)"
                .to_string(),
            _ => String::new(),
        };
        self.error(format!("{what}: HTTP {status}{detail}{hint}"))
    }

    /// The error for a 404 to a request for the manifest `reference` (a tag or digest)
    /// of `repository`: which of the two the registry lacks, and how to see what it has.
    pub(crate) fn manifest_unknown(
        &self,
        repository: &str,
        reference: &str,
        response: &mut Response<Body>,
    ) -> Error {
        let body = self.read_small(response, 64 << 10).unwrap_or_default();
        let (host, repository) = (shown(&self.registry), shown(repository));
        let at = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        let what = format!("{host}/{repository}{at}{}", shown(reference));
        if registry_errors(&body).contains("NAME_UNKNOWN") {
            return self.error(format!(
                "{what}: manifest unknown: the registry has no repository {repository} \
                 (check the name)"
            ));
        }
        let missing = if reference.starts_with("sha256:") {
            format!("no manifest {}", shown(reference))
        } else {
            format!("no tag {}", shown(reference))
        };
        self.error(format!(
            "{what}: manifest unknown: {repository} has {missing} \
             (`dockhand tags docker://{host}/{repository}` lists its tags)"
        ))
    }

    /// What to do when the registry wants credentials and has none.
    fn login_hint(&self) -> String {
        let host = shown(&self.registry);
        format!(
            "log in with `docker login {host}` or `podman login {host}`, \
             or give {} USER:PASSWORD or {} FILE",
            Setting::Creds,
            Setting::Authfile
        )
    }

    /// What to do when the registry refused the credentials it was given.
    fn refused_hint(&self) -> String {
        format!(
            "the credentials were refused: check them, or log in again with `docker login {}`",
            shown(&self.registry)
        )
    }

    /// What to check after a request failed without an answer: ` (...)`, or nothing.
    fn connection_hint(&self, e: &ureq::Error) -> String {
        let host = shown(&self.registry);
        let hint = match e {
            ureq::Error::HostNotFound => {
                format!("the host name of {host} does not resolve: check it")
            }
            ureq::Error::ConnectionFailed => format!("is a registry listening at {host}?"),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("is a registry listening at {host}?")
            }
            // std's resolver failure, which has no ErrorKind of its own.
            ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
                format!("the host name of {host} does not resolve: check it")
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
                format!(
                    "for a registry with a self-signed certificate, or one that speaks plain HTTP, \
                     add {}=false",
                    Setting::TlsVerify
                )
            }
            ureq::Error::Timeout(_) => {
                format!(
                    "it did not answer in time; {} N tries again more often",
                    Setting::RetryTimes
                )
            }
            _ => return String::new(),
        };
        format!(" ({hint})")
    }
}

/// Does `answer`, to a request sent to `sent_to` over plain HTTP, come from a server
/// speaking plain HTTP? A registry says `Docker-Distribution-API-Version`, or answers
/// as any HTTP server does; a TLS server given a plain request answers 400 (Go's
/// "Client sent an HTTP request to an HTTPS server", nginx's "The plain HTTP request
/// was sent to HTTPS port") or a redirect to HTTPS on its own port (nginx's 497 page),
/// when it answers at all.
fn answers_plain_http(answer: &Response<Body>, sent_to: &Url) -> bool {
    if answer
        .headers()
        .contains_key("docker-distribution-api-version")
    {
        return true;
    }
    let status = answer.status().as_u16();
    if status == 400 {
        return false;
    }
    if answer.status().is_redirection() {
        let to_https_here = header(answer, "location")
            .and_then(|location| sent_to.join(location).ok())
            .is_some_and(|to| {
                to.origin.scheme == Scheme::Https
                    && to.origin.host == sent_to.origin.host
                    && to.origin.port == sent_to.origin.port
            });
        return !to_https_here;
    }
    true
}

/// A failure that says nothing of which protocol the server speaks: nothing
/// answered (no such host, no listener, no answer in time).
fn unreachable(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => {
            matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
            ) || io.to_string().contains("failed to lookup address")
        }
        _ => false,
    }
}

/// `, CODE: message` for each error of a distribution error body.
fn registry_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(errors) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    errors
        .errors
        .iter()
        .take(3)
        .map(|e| {
            let text = format!(
                "{}: {}",
                e.code.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or("")
            );
            format!(", {}", shown(&text.chars().take(200).collect::<String>()))
        })
        .collect()
}

/// A body's rate floor: at least `floor` bytes for every `window` spent waiting for
/// them. Only the time inside reads counts, so a reader that stops reading for a while
/// (a slow output, an upload between chunks) is not taken for a slow registry.
pub(crate) struct Pace {
    rule: Option<(Duration, u64)>,
    waited: Duration,
    bytes: u64,
}

impl Pace {
    /// Count from zero again (a new attempt).
    pub(crate) fn restart(&mut self) {
        self.waited = Duration::ZERO;
        self.bytes = 0;
    }

    /// `reader.read(buf)`, timed: an error when the stretch this read ends fell short
    /// of the floor (the bytes read are then counted as `Err`'s, and lost: the caller
    /// starts a new attempt from what it had).
    pub(crate) fn read(&mut self, reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        let n = reader.read(buf)?;
        let Some((window, floor)) = self.rule else {
            return Ok(n);
        };
        self.waited += started.elapsed();
        self.bytes += n as u64;
        if self.waited < window {
            return Ok(n);
        }
        if self.bytes < floor {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the answer arrived at {} bytes in {} s, under the floor of {floor} bytes",
                    self.bytes,
                    self.waited.as_secs()
                ),
            ));
        }
        self.restart();
        Ok(n)
    }
}

/// A reader failing once its bytes come slower than the pace allows.
struct Paced<R> {
    inner: R,
    pace: Pace,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.pace.read(&mut self.inner, buf)
    }
}

fn basic(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Percent-encoding for a query value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` without its query, for messages: an upload URL's query carries state, and a
/// redirect target's may carry a signature.
/// Any user name or password in it is left out too.
fn cut_query(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn messages_show_urls_without_queries() {
        assert_eq!(
            cut_query("https://h:5000/v2/a/blobs/uploads/x?_state=secret"),
            "https://h:5000/v2/a/blobs/uploads/x"
        );
        assert_eq!(
            cut_query("http://u:secret@evil:1/x?y"),
            "http://***@evil:1/x"
        );
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> Response<Body> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::builder().data("")).unwrap()
    }

    #[test]
    fn tells_a_plain_registry_from_a_tls_server_answering_a_plain_request() {
        let sent_to = Url::parse("http://r.example:5000/v2/a/manifests/1").unwrap();
        let api = ("Docker-Distribution-API-Version", "registry/2.0");
        // A registry's answers, whatever their status.
        for status in [200, 401, 404, 403, 503] {
            assert!(
                answers_plain_http(&answer(status, &[]), &sent_to),
                "{status}"
            );
        }
        assert!(answers_plain_http(&answer(400, &[api]), &sent_to));
        let storage = ("Location", "https://storage.example/blob?sig=x");
        assert!(answers_plain_http(&answer(307, &[storage]), &sent_to));
        // A TLS server's: Go's and nginx's 400, and nginx's redirect to itself over
        // HTTPS.
        assert!(!answers_plain_http(&answer(400, &[]), &sent_to));
        let to_tls = ("Location", "https://r.example:5000/v2/a/manifests/1");
        assert!(!answers_plain_http(&answer(301, &[to_tls]), &sent_to));
        assert!(answers_plain_http(&answer(301, &[to_tls, api]), &sent_to));
    }

    #[test]
    fn reads_distribution_error_bodies() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_errors(body),
            ", MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(registry_errors(b"<html>"), "");
    }
}
