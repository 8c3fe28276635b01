//! A real registry on 127.0.0.1 for the `docker://` tests: Debian's `docker-registry`
//! (CNCF distribution) with no auth, HTTP Basic (htpasswd) or bearer tokens (from
//! tests/support/token_server.py), and [`Proxy`], an in-process reverse proxy in front
//! of it that counts blob bytes, records requests and injects faults.
//!
//! Like the other interop helpers, [`Registry::start`] returns `None` (after a visible
//! SKIPPED line) when a tool is missing, and panics instead under
//! DOCKHAND_REQUIRE_INTEROP=1.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{have_tool, skip_or_fail, test_name};

/// How the registry authenticates clients.
pub enum Auth {
    /// Anyone may pull and push.
    None,
    /// HTTP Basic against an htpasswd file holding `user`, and `more` users (each of
    /// whom may pull and push everywhere, as htpasswd has no rights per repository).
    Basic {
        user: String,
        pass: String,
        more: Vec<(String, String)>,
    },
    /// Bearer tokens from a token server of our own. `user`/`pass` get pull and push;
    /// anonymous clients get pull when `anonymous_pull`, else nothing (the registry then
    /// answers 401 `insufficient_scope`).
    Token {
        user: String,
        pass: String,
        anonymous_pull: bool,
    },
}

impl Auth {
    /// Basic auth with `user`/`pass`.
    pub fn basic(user: &str, pass: &str) -> Auth {
        Auth::basic_users(&[(user, pass)])
    }

    /// Basic auth with several users (the first is the one `Registry::creds` gives).
    pub fn basic_users(users: &[(&str, &str)]) -> Auth {
        let (user, pass) = users[0];
        Auth::Basic {
            user: user.into(),
            pass: pass.into(),
            more: users[1..]
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        }
    }

    /// Token auth with `user`/`pass`.
    pub fn token(user: &str, pass: &str, anonymous_pull: bool) -> Auth {
        Auth::Token {
            user: user.into(),
            pass: pass.into(),
            anonymous_pull,
        }
    }
}

/// The TLS files a registry serves with (`http.tls`): its certificate and key, and
/// the CAs of the client certificates it requires (`clientcas`: mutual TLS), if any.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cas: Option<PathBuf>,
}

impl TlsFiles {
    /// `http.tls` of the registry's config.
    fn yaml(&self) -> String {
        let mut yaml = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_str(super::s(&self.cert)),
            yaml_str(super::s(&self.key))
        );
        if let Some(cas) = &self.client_cas {
            yaml.push_str(&format!(
                "    clientcas:\n      - {}\n",
                yaml_str(super::s(cas))
            ));
        }
        yaml
    }
}

/// The `service` the registry names in its Bearer challenge and expects in `aud`.
pub const TOKEN_SERVICE: &str = "dockhand-test-registry";
/// The `iss` of the test tokens.
pub const TOKEN_ISSUER: &str = "dockhand-test-issuer";

/// How long a registry or token server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `docker-registry serve`, killed (with its token server) on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    token: Option<TokenServer>,
    creds: Option<(String, String)>,
    storage: PathBuf,
    /// Holds the config, storage and logs; removed on drop.
    _dir: tempfile::TempDir,
}

struct TokenServer {
    child: Child,
    addr: String,
}

/// The Python 3 to run the token server with: Debian's python3-cryptography is
/// installed for /usr/bin/python3, which a `python3` earlier on PATH may not see.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Can `python()` import `cryptography`? Otherwise skip or fail like `have_tool`.
pub fn have_python_cryptography(test: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", "import cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip_or_fail(
            test,
            &format!(
                "{} cannot import cryptography (install python3-cryptography)",
                python()
            ),
        );
    }
    ok
}

/// dockhand running `args` with a private HOME and cache inside `tmp`, and no auth file
/// from the environment: no test reads the machine's credentials or writes its cache.
pub fn isolated_dockhand(tmp: &Path, args: &[&str]) -> Command {
    let mut cmd = super::dockhand();
    cmd.env("HOME", tmp.join("home"))
        .env("XDG_CACHE_HOME", tmp.join("xdg-cache"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago (for a server that cannot bind port
/// 0 itself; the caller retries when it was taken in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// A YAML scalar: JSON strings are valid YAML and escape everything.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Registry {
    /// Start a registry with `auth` on a free loopback port and wait until it answers.
    /// `None` when a tool it needs is missing and DOCKHAND_REQUIRE_INTEROP is unset (the
    /// caller returns early); panics when required and missing, or when it does not
    /// come up (with its log).
    pub fn start(auth: Auth) -> Option<Registry> {
        Registry::start_with(auth, None, true)
    }

    /// [`Registry::start`], serving HTTPS with `tls` when given, with deleting
    /// manifests allowed or not (`storage.delete.enabled`).
    pub fn start_with(auth: Auth, tls: Option<&TlsFiles>, delete: bool) -> Option<Registry> {
        let test = test_name();
        if !have_tool(&test, "docker-registry") {
            return None;
        }
        match &auth {
            Auth::None => {}
            Auth::Basic { .. } => {
                if !have_tool(&test, "htpasswd") {
                    return None;
                }
            }
            Auth::Token { .. } => {
                if !have_python_cryptography(&test) {
                    return None;
                }
            }
        }

        let dir = tempfile::Builder::new()
            .prefix("dockhand-registry.")
            .tempdir()
            .unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();

        let mut token = None;
        let mut creds = None;
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, pass, more } => {
                let mut lines = Vec::new();
                for (user, pass) in
                    std::iter::once((user, pass)).chain(more.iter().map(|(u, p)| (u, p)))
                {
                    let line = super::tool("htpasswd", &["-Bbn", user, pass]);
                    lines.extend_from_slice(line.trim_ascii_end());
                    lines.push(b'\n');
                }
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, lines).unwrap();
                creds = Some((user.clone(), pass.clone()));
                format!(
                    "auth:\n  htpasswd:\n    realm: dockhand-test-basic\n    path: {}\n",
                    yaml_str(super::s(&htpasswd))
                )
            }
            Auth::Token {
                user,
                pass,
                anonymous_pull,
            } => {
                let server = TokenServer::start(dir.path(), user, pass, *anonymous_pull);
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    yaml_str(&format!("http://{}/token", server.addr)),
                    yaml_str(TOKEN_SERVICE),
                    yaml_str(TOKEN_ISSUER),
                    yaml_str(super::s(&dir.path().join("root.crt"))),
                );
                token = Some(server);
                creds = Some((user.clone(), pass.clone()));
                yaml
            }
        };

        let tls_yaml = tls.map(TlsFiles::yaml).unwrap_or_default();
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let yaml = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {delete}\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {}\n  secret: dockhand-test-secret\n\
                 {tls_yaml}{auth_yaml}",
                yaml_str(super::s(&storage)),
                yaml_str(&addr),
            );
            std::fs::write(&config, yaml).unwrap();
            let log_file = std::fs::File::create(&log).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting docker-registry: {e}"));
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = read_log(&log);
                    if last_log.contains("address already in use") {
                        break; // the port was taken in between: another one
                    }
                    if let Some(mut t) = token {
                        kill_and_wait(&mut t.child);
                    }
                    panic!(
                        "docker-registry exited ({status}) before answering; config:\n{}\nlog:\n{last_log}",
                        read_log(&config)
                    );
                }
                if let Ok((code, _)) = http_get(&addr, "/v2/") {
                    // A TLS server answers a plain request with 400 once it serves.
                    if code == 200 || code == 401 || (tls.is_some() && code == 400) {
                        return Some(Registry {
                            addr,
                            child,
                            token,
                            creds,
                            storage,
                            _dir: dir,
                        });
                    }
                }
                if start.elapsed() > START_TIMEOUT {
                    kill_and_wait(&mut child);
                    if let Some(mut t) = token {
                        kill_and_wait(&mut t.child);
                    }
                    panic!(
                        "docker-registry on {addr} did not answer GET /v2/ within {START_TIMEOUT:?}; log:\n{}",
                        read_log(&log)
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(mut t) = token {
            kill_and_wait(&mut t.child);
        }
        panic!("docker-registry found no free port in 5 attempts; log:\n{last_log}");
    }

    /// The registry's storage root (`storage.filesystem.rootdirectory`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// `user:pass` for skopeo's `--creds`, when the registry has a user.
    pub fn creds(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// `http://127.0.0.1:PORT/token` of the token server, with `Auth::Token`.
    pub fn token_realm(&self) -> Option<String> {
        self.token
            .as_ref()
            .map(|t| format!("http://{}/token", t.addr))
    }

    /// How many token requests the token server has answered (any status); 0 without
    /// `Auth::Token`.
    pub fn token_requests(&self) -> u64 {
        let Some(t) = &self.token else { return 0 };
        let (code, body) =
            http_get(&t.addr, "/count").unwrap_or_else(|e| panic!("token server /count: {e}"));
        assert_eq!(code, 200, "token server /count: {body}");
        body.trim()
            .parse()
            .unwrap_or_else(|_| panic!("token server /count: {body:?}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
        if let Some(t) = &mut self.token {
            kill_and_wait(&mut t.child);
        }
    }
}

impl TokenServer {
    fn start(dir: &Path, user: &str, pass: &str, anonymous_pull: bool) -> TokenServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/token_server.py");
        let log = dir.join("token-server.log");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .args(["--dir", super::s(dir), "--user", user, "--password", pass])
            .args(["--service", TOKEN_SERVICE, "--issuer", TOKEN_ISSUER]);
        if anonymous_pull {
            cmd.arg("--anonymous-pull");
        }
        let log_file = std::fs::File::create(&log).unwrap();
        // stdin is a pipe we never write: the server exits when this process goes away.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        let port_file = dir.join("token.port");
        let start = Instant::now();
        loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                let addr = format!("127.0.0.1:{}", port.trim());
                return TokenServer { child, addr };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "token server exited ({status}) before listening; log:\n{}",
                    read_log(&log)
                );
            }
            if start.elapsed() > START_TIMEOUT {
                kill_and_wait(&mut child);
                panic!(
                    "token server did not listen within {START_TIMEOUT:?}; log:\n{}",
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a registry test needs, set up in one place: a temp dir, a registry with the
/// chosen auth, a [`Proxy`] in front of it when asked for, the tools the test needs
/// (each skipped or failed like [`have_tool`]) and, for a test that uses the docker
/// daemon, [`docker_lock`](super::docker_lock) held for as long as the fixture lives.
///
/// ```ignore
/// let Some(fx) = RegistryFixture::builder().auth(Auth::basic(USER, PASS)).proxy().start()
/// else {
///     return;
/// };
/// ```
pub struct RegistryFixture {
    /// Dropped first: the docker lock, the proxy, then the registry, then the temp dir.
    _docker: Option<std::sync::MutexGuard<'static, ()>>,
    proxy: Option<Proxy>,
    /// The registry itself (its own address, storage, log and token server).
    pub registry: Registry,
    tmp: tempfile::TempDir,
}

/// How to build a [`RegistryFixture`]: [`RegistryFixture::builder`], options, then
/// [`start`](Self::start).
pub struct RegistryFixtureBuilder {
    auth: Auth,
    tls: Option<TlsFiles>,
    proxy: bool,
    tools: Vec<&'static str>,
    docker: bool,
    delete: bool,
}

impl RegistryFixture {
    /// A fixture with no auth, no proxy and no other tool; see the builder's options.
    pub fn builder() -> RegistryFixtureBuilder {
        RegistryFixtureBuilder {
            auth: Auth::None,
            tls: None,
            proxy: false,
            tools: Vec::new(),
            docker: false,
            delete: true,
        }
    }

    /// The test's temp dir (dockhand's HOME and cache go inside it).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `127.0.0.1:PORT` clients should talk to: the proxy's when there is one.
    pub fn addr(&self) -> &str {
        self.proxy.as_ref().map_or(&self.registry.addr, |p| &p.addr)
    }

    /// `docker://ADDR/path` through [`addr`](Self::addr).
    pub fn remote(&self, path: &str) -> String {
        format!("docker://{}/{path}", self.addr())
    }

    /// The proxy; panics when the fixture was built without [`proxy`](RegistryFixtureBuilder::proxy).
    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("a fixture built with .proxy()")
    }
}

impl RegistryFixtureBuilder {
    /// The registry authenticates clients with `auth`.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The registry serves HTTPS with these files (the proxy, which speaks plain
    /// HTTP to it, cannot be combined with this).
    pub fn tls(mut self, tls: TlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A fault-injecting, request-recording [`Proxy`] in front of the registry.
    pub fn proxy(mut self) -> Self {
        self.proxy = true;
        self
    }

    /// The test also runs `tool` (skopeo, say).
    pub fn needs(mut self, tool: &'static str) -> Self {
        self.tools.push(tool);
        self
    }

    /// The test also uses the docker daemon: it must answer, and the fixture holds the
    /// docker lock.
    pub fn docker(mut self) -> Self {
        self.docker = true;
        self
    }

    /// The registry refuses to delete manifests (`storage.delete.enabled: false`, as
    /// distribution's default is).
    pub fn no_delete(mut self) -> Self {
        self.delete = false;
        self
    }

    /// Start it all; `None` (after a visible SKIPPED line) when something it needs is
    /// missing and DOCKHAND_REQUIRE_INTEROP is unset.
    pub fn start(self) -> Option<RegistryFixture> {
        let test = test_name();
        if !self.tools.iter().all(|tool| have_tool(&test, tool)) {
            return None;
        }
        if self.docker && !super::have_docker(&test) {
            return None;
        }
        assert!(
            !(self.proxy && self.tls.is_some()),
            "the proxy speaks plain HTTP to the registry: not with TLS"
        );
        let registry = Registry::start_with(self.auth, self.tls.as_ref(), self.delete)?;
        let proxy = self.proxy.then(|| Proxy::start(&registry.addr));
        Some(RegistryFixture {
            _docker: self.docker.then(super::docker_lock),
            proxy,
            registry,
            tmp: super::tempdir(),
        })
    }
}

/// `GET path` on `addr` with `Connection: close`; the status and the raw body (not
/// de-chunked). For readiness checks and small control endpoints.
pub fn http_get(addr: &str, path: &str) -> io::Result<(u16, String)> {
    let sock: std::net::SocketAddr = addr.parse().map_err(io::Error::other)?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((code, body.to_string()))
}

/// How long the proxy waits on an idle client connection or a silent upstream.
const PROXY_TIMEOUT: Duration = Duration::from_secs(120);

/// A reverse proxy on 127.0.0.1 in front of a registry: clients talk to `addr` as if
/// it were the registry. Each client request goes to the upstream on a connection of
/// its own (`Connection: close`); bodies are streamed both ways, never buffered whole.
/// Client connections are kept alive; `Location` headers naming the upstream are
/// rewritten to the proxy. It counts blob bytes, records requests and, on request,
/// answers with an error, cuts a response body or cuts a request body.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: String,
    addr: String,
    blob_bytes: AtomicU64,
    stop: AtomicBool,
    state: Mutex<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    requests: Vec<(String, String, u16)>,
    /// Every `Authorization` value clients sent, in order.
    authorizations: Vec<String>,
    /// (method, path and query, `Authorization` value or "") of every request.
    authorized: Vec<(String, String, String)>,
}

struct Rule {
    method: String,
    path_contains: String,
    remaining: u32,
    action: Action,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Inject {
        status: u16,
        retry_after: Option<u32>,
    },
    CutResponse(u64),
    /// Send this many body bytes, then hold the connection open, sending nothing more
    /// (a transfer that hangs: the test kills the client meanwhile).
    StallAfter(u64),
    CutUpload(u64),
}

impl Proxy {
    /// Start a proxy for the registry at `upstream` (`HOST:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            addr: addr.clone(),
            blob_bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            state: Mutex::new(ProxyState::default()),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = accept.clone();
                std::thread::spawn(move || {
                    let _ = serve_client(&shared, conn);
                });
            }
        });
        Proxy { addr, shared }
    }

    /// Response-body bytes sent to clients for `GET .../blobs/...` (not uploads) since
    /// the start or the last [`reset_counters`](Self::reset_counters).
    pub fn blob_bytes_served(&self) -> u64 {
        self.shared.blob_bytes.load(Ordering::SeqCst)
    }

    /// Zero the blob byte count and forget the recorded requests.
    pub fn reset_counters(&self) {
        self.shared.blob_bytes.store(0, Ordering::SeqCst);
        let mut state = self.shared.state.lock().unwrap();
        state.requests.clear();
        state.authorizations.clear();
        state.authorized.clear();
    }

    /// (method, path and query, status sent) of every request, in the order their
    /// answers started. The status is 0 when the client got no answer (a request cut
    /// by [`cut_upload_after`](Self::cut_upload_after)).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// Every `Authorization` header value clients sent through the proxy since the
    /// start or the last [`reset_counters`](Self::reset_counters).
    pub fn authorizations(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().authorizations.clone()
    }

    /// (method, path and query, `Authorization` value, "" for none) of every request
    /// since the start or the last [`reset_counters`](Self::reset_counters), in the
    /// order they arrived.
    pub fn authorized_requests(&self) -> Vec<(String, String, String)> {
        self.shared.state.lock().unwrap().authorized.clone()
    }

    /// How many requests so far had `method`, a path (with its query) containing
    /// `path_contains` and, when given, the answer `status`.
    pub fn count(&self, method: &str, path_contains: &str, status: Option<u16>) -> usize {
        let requests = &self.shared.state.lock().unwrap().requests;
        requests
            .iter()
            .filter(|(m, p, s)| {
                m == method && p.contains(path_contains) && status.is_none_or(|want| *s == want)
            })
            .count()
    }

    /// The next `times` requests whose method equals `method` and whose path contains
    /// `path_contains` are answered with `status` (a registry-style JSON error body,
    /// and `Retry-After: N` if given) without forwarding; a request body is read and
    /// dropped first.
    pub fn inject(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        times: u32,
        retry_after: Option<u32>,
    ) {
        self.add_rule(
            method,
            path_contains,
            times,
            Action::Inject {
                status,
                retry_after,
            },
        );
    }

    /// The next `times` matching requests are forwarded, but the response body is cut
    /// (the client connection closed) after `bytes` body bytes. The headers, including
    /// `Content-Length`, are the upstream's.
    pub fn cut_after(&self, method: &str, path_contains: &str, bytes: u64, times: u32) {
        self.add_rule(method, path_contains, times, Action::CutResponse(bytes));
    }

    /// The next `times` matching requests are answered with the first `bytes` of their
    /// body, and then nothing more for up to a minute (or until the proxy is dropped),
    /// after which the connection is closed.
    pub fn stall_after(&self, method: &str, path_contains: &str, bytes: u64, times: u32) {
        self.add_rule(method, path_contains, times, Action::StallAfter(bytes));
    }

    /// The next `times` matching requests are forwarded with only the first `bytes` of
    /// their body, then the upstream connection is half-closed, its answer read and
    /// dropped (so the registry has finished with the request when the client sees the
    /// failure), and the client connection closed without an answer.
    pub fn cut_upload_after(&self, method: &str, path_contains: &str, bytes: u64, times: u32) {
        self.add_rule(method, path_contains, times, Action::CutUpload(bytes));
    }

    fn add_rule(&self, method: &str, path_contains: &str, times: u32, action: Action) {
        self.shared.state.lock().unwrap().rules.push(Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            remaining: times,
            action,
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

impl Shared {
    /// The action of the first live rule matching a request, consuming one use.
    fn take_rule(&self, method: &str, target: &str) -> Option<Action> {
        let mut st = self.state.lock().unwrap();
        let rule = st.rules.iter_mut().find(|r| {
            r.remaining > 0 && r.method == method && target.contains(r.path_contains.as_str())
        })?;
        rule.remaining -= 1;
        Some(rule.action)
    }

    fn record(&self, method: &str, target: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .requests
            .push((method.to_string(), target.to_string(), status));
    }
}

/// How a message body is delimited.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Does a comma-separated header (Connection, Transfer-Encoding, Expect) hold `token`?
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn content_length(&self) -> io::Result<Option<u64>> {
        match self.get("content-length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| io::Error::other(format!("bad Content-Length {v:?}"))),
        }
    }
}

/// Headers the proxy sets itself on each hop.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "expect",
    "host",
];

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Read a message head; `None` on a clean end of stream before it.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first = String::new();
    let mut headers = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            if first.is_empty() && headers.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        total += n;
        if total > 256 * 1024 {
            return Err(io::Error::other("message head too long"));
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        if first.is_empty() {
            // Tolerate empty lines before a request line (RFC 9112 2.2).
            if !line.is_empty() {
                first = line.to_string();
            }
            continue;
        }
        if line.is_empty() {
            return Ok(Some(Head { first, headers }));
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| io::Error::other(format!("bad header line {line:?}")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

/// Read a body framed as `framing`, handing each piece to `sink` until it returns
/// false or the body ends. Chunked bodies are decoded (trailers are dropped).
fn pump_body(
    r: &mut impl BufRead,
    framing: Framing,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut exact = |r: &mut dyn BufRead,
                     mut left: u64,
                     sink: &mut dyn FnMut(&[u8]) -> io::Result<bool>|
     -> io::Result<bool> {
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let got = r.read(&mut buf[..want])?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            left -= got as u64;
            if !sink(&buf[..got])? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match framing {
        Framing::None => Ok(()),
        Framing::Length(n) => exact(r, n, sink).map(|_| ()),
        Framing::UntilClose => {
            let mut b = vec![0u8; 64 * 1024];
            loop {
                let got = r.read(&mut b)?;
                if got == 0 || !sink(&b[..got])? {
                    return Ok(());
                }
            }
        }
        Framing::Chunked => loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let size_text = line.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            if !exact(r, size, sink)? {
                return Ok(());
            }
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        },
    }
}

/// Write one piece of a body framed as `framing` (chunked framing for `Chunked`).
fn write_piece(w: &mut impl Write, framing: Framing, piece: &[u8]) -> io::Result<()> {
    if piece.is_empty() {
        return Ok(());
    }
    if framing == Framing::Chunked {
        write!(w, "{:x}\r\n", piece.len())?;
        w.write_all(piece)?;
        w.write_all(b"\r\n")
    } else {
        w.write_all(piece)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The distribution error code that goes with an injected status.
fn error_code(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NOT_FOUND",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

/// Serve one client connection: requests one after another until it closes.
fn serve_client(shared: &Shared, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(PROXY_TIMEOUT))?;
    client.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, client.try_clone()?);
    let mut out = io::BufWriter::with_capacity(64 * 1024, client.try_clone()?);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut parts = head.first.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(io::Error::other(format!(
                "bad request line {:?}",
                head.first
            )));
        };
        let (method, target) = (method.to_string(), target.to_string());
        {
            let mut state = shared.state.lock().unwrap();
            let authorization = head.get("authorization").unwrap_or_default().to_string();
            if !authorization.is_empty() {
                state.authorizations.push(authorization.clone());
            }
            state
                .authorized
                .push((method.clone(), target.clone(), authorization));
        }
        let framing = if head.has_token("transfer-encoding", "chunked") {
            Framing::Chunked
        } else {
            match head.content_length()? {
                Some(n) => Framing::Length(n),
                None => Framing::None,
            }
        };
        let close_after =
            version.eq_ignore_ascii_case("HTTP/1.0") || head.has_token("connection", "close");
        if head.has_token("expect", "100-continue") {
            // Answered here; the upstream never sees the Expect header.
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            out.flush()?;
        }
        let keep_going = match shared.take_rule(&method, &target) {
            Some(Action::Inject {
                status,
                retry_after,
            }) => {
                pump_body(&mut reader, framing, &mut |_| Ok(true))?;
                let body = format!(
                    r#"{{"errors":[{{"code":"{}","message":"injected by the test proxy","detail":null}}]}}"#,
                    error_code(status)
                );
                let mut h = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\n\
                     Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n",
                    reason(status),
                    body.len()
                );
                if let Some(secs) = retry_after {
                    h.push_str(&format!("Retry-After: {secs}\r\n"));
                }
                if close_after {
                    h.push_str("Connection: close\r\n");
                }
                h.push_str("\r\n");
                shared.record(&method, &target, status);
                out.write_all(h.as_bytes())?;
                if method != "HEAD" {
                    out.write_all(body.as_bytes())?;
                }
                out.flush()?;
                true
            }
            action => forward(
                shared,
                &head,
                &method,
                &target,
                framing,
                close_after,
                action,
                &mut reader,
                &mut out,
            )?,
        };
        if !keep_going || close_after {
            out.flush()?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Forward one request to the upstream and its answer to the client. Returns whether
/// the client connection may carry on.
#[allow(clippy::too_many_arguments)]
fn forward(
    shared: &Shared,
    head: &Head,
    method: &str,
    target: &str,
    framing: Framing,
    close_after: bool,
    action: Option<Action>,
    reader: &mut BufReader<TcpStream>,
    out: &mut io::BufWriter<TcpStream>,
) -> io::Result<bool> {
    let mut up = match TcpStream::connect(&shared.upstream) {
        Ok(s) => s,
        Err(e) => {
            let body = format!("proxy: upstream {}: {e}", shared.upstream);
            shared.record(method, target, 502);
            write!(
                out,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            out.flush()?;
            return Ok(false);
        }
    };
    up.set_read_timeout(Some(PROXY_TIMEOUT))?;
    up.set_nodelay(true)?;

    // The request, re-framed for the upstream.
    let mut h = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        shared.upstream
    );
    for (k, v) in &head.headers {
        if !is_hop_by_hop(k) {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    match framing {
        Framing::Length(n) => h.push_str(&format!("Content-Length: {n}\r\n")),
        Framing::Chunked => h.push_str("Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
    h.push_str("\r\n");
    let mut upw = io::BufWriter::with_capacity(64 * 1024, up.try_clone()?);
    upw.write_all(h.as_bytes())?;

    let upload_limit = match action {
        Some(Action::CutUpload(n)) => Some(n),
        _ => None,
    };
    let mut sent = 0u64;
    pump_body(reader, framing, &mut |piece| {
        let piece = match upload_limit {
            Some(limit) => &piece[..piece.len().min((limit - sent) as usize)],
            None => piece,
        };
        write_piece(&mut upw, framing, piece)?;
        sent += piece.len() as u64;
        Ok(upload_limit.is_none_or(|limit| sent < limit))
    })?;
    if upload_limit.is_some() {
        // An upload that stops mid-body: the upstream sees the end of the stream, the
        // client no answer. The upstream's answer is awaited so that the registry has
        // settled the upload before the client can try again.
        upw.flush()?;
        drop(upw);
        let _ = up.shutdown(Shutdown::Write);
        let _ = io::copy(&mut up, &mut io::sink());
        shared.record(method, target, 0);
        return Ok(false);
    }
    if framing == Framing::Chunked {
        upw.write_all(b"0\r\n\r\n")?;
    }
    upw.flush()?;
    drop(upw);

    // The answer.
    let mut upr = BufReader::with_capacity(64 * 1024, up);
    let resp = loop {
        let resp = read_head(&mut upr)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let status: u16 = resp
            .first
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {:?}", resp.first)))?;
        if !(100..200).contains(&status) {
            break (resp, status);
        }
    };
    let (resp, status) = resp;
    let body_framing = if method == "HEAD" || status == 204 || status == 304 {
        Framing::None
    } else if resp.has_token("transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match resp.content_length()? {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let upstream_url = format!("http://{}", shared.upstream);
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in &resp.headers {
        if k.eq_ignore_ascii_case("content-length") && body_framing == Framing::None {
            // A HEAD answer's length describes the GET body: kept.
            h.push_str(&format!("{k}: {v}\r\n"));
        } else if is_hop_by_hop(k) {
        } else if k.eq_ignore_ascii_case("location") && v.starts_with(&upstream_url) {
            h.push_str(&format!(
                "{k}: http://{}{}\r\n",
                shared.addr,
                &v[upstream_url.len()..]
            ));
        } else {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let client_framing = match body_framing {
        Framing::Length(n) => {
            h.push_str(&format!("Content-Length: {n}\r\n"));
            Framing::Length(n)
        }
        Framing::Chunked | Framing::UntilClose => {
            h.push_str("Transfer-Encoding: chunked\r\n");
            Framing::Chunked
        }
        Framing::None => Framing::None,
    };
    if close_after {
        h.push_str("Connection: close\r\n");
    }
    h.push_str("\r\n");
    shared.record(method, target, status);
    out.write_all(h.as_bytes())?;

    let is_blob =
        method == "GET" && target.contains("/blobs/") && !target.contains("/blobs/uploads");
    let cut = match action {
        Some(Action::CutResponse(n) | Action::StallAfter(n)) => Some(n),
        _ => None,
    };
    let stall = matches!(action, Some(Action::StallAfter(_)));
    let mut served = 0u64;
    let mut was_cut = false;
    pump_body(&mut upr, body_framing, &mut |piece| {
        let piece = match cut {
            Some(limit) => &piece[..piece.len().min((limit - served) as usize)],
            None => piece,
        };
        write_piece(out, client_framing, piece)?;
        served += piece.len() as u64;
        if is_blob {
            shared
                .blob_bytes
                .fetch_add(piece.len() as u64, Ordering::SeqCst);
        }
        if cut.is_some_and(|limit| served >= limit) {
            was_cut = true;
            if stall {
                out.flush()?;
                let until = std::time::Instant::now() + Duration::from_secs(60);
                while !shared.stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            return Ok(false);
        }
        Ok(true)
    })?;
    if was_cut || (cut == Some(0)) {
        out.flush()?;
        return Ok(false);
    }
    if client_framing == Framing::Chunked {
        out.write_all(b"0\r\n\r\n")?;
    }
    out.flush()?;
    Ok(true)
}

/// A tiny HTTP server answering each request from a script, on 127.0.0.1: a registry
/// that answers exactly what a test needs (errors, limits, lies), with no tool to
/// install.
pub struct Scripted {
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Scripted {
    /// Answer every request with `answer(path)`: status, headers and body.
    pub fn start(
        answer: impl Fn(&str) -> (u16, Vec<(&'static str, String)>, Vec<u8>) + Send + Sync + 'static,
    ) -> Scripted {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let answer = std::sync::Arc::clone(&answer);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let path = parts.next().unwrap_or("").to_string();
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" || header == "\n" {
                                break;
                            }
                        }
                        let (status, headers, body) = answer(&path);
                        let mut head =
                            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        if writer.write_all(head.as_bytes()).is_err() {
                            return;
                        }
                        if method != "HEAD" && writer.write_all(&body).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Scripted { addr }
    }
}
