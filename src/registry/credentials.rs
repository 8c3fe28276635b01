//! Finding credentials for a registry, where skopeo and podman (containers/image) and
//! docker look for them.
//!
//! `--creds USER:PASSWORD` wins. Otherwise, with `--authfile`, only that file is read;
//! without it, the first of these files that has credentials for the registry gives
//! them: `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`),
//! `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`) and the legacy
//! `~/.dockercfg`. Missing files are skipped.
//!
//! In a file, a `credHelpers` entry for the registry decides alone, as in docker: the
//! helper's credentials, or (when it has none) none from this file, so a stale `auths`
//! entry beside it is not used. Then the most specific `auths` entry with credentials,
//! then the `credsStore` helper.
//!
//! Everything read is bounded (auth files and helper output at most 1 MiB, a helper
//! runs at most 30 s), and no message quotes a secret: errors name the file and the
//! key, never a value.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::Setting;
use crate::error::{Error, Result};
use crate::text::shown;

/// The name Docker Hub goes by once normalised.
const DOCKER_HUB: &str = "docker.io";
/// Host names that are Docker Hub too, in auth file keys.
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// What docker hands a credential helper for Docker Hub.
const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
/// The user name a credential helper gives for an identity token.
const TOKEN_USERNAME: &str = "<token>";
/// The largest auth file read.
const MAX_AUTH_FILE: u64 = 1 << 20;
/// The most a credential helper may print (on stdout, and on stderr).
const MAX_HELPER_OUTPUT: u64 = 1 << 20;
/// How long a credential helper may run before it is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials for one registry. Its Debug must never print the secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// A user name and password, for Basic authentication or a token request.
    Basic {
        /// The user name.
        username: String,
        /// The password (secret).
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`) to exchange for a bearer token.
    IdentityToken {
        /// The user name that goes with it; empty when unknown.
        username: String,
        /// The token (secret).
        token: String,
    },
}

/// Prints `<redacted>` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &Redacted)
                .finish(),
            Credentials::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &Redacted)
                .finish(),
        }
    }
}

/// The command-line options that choose credentials.
#[derive(Clone, Default)]
pub(crate) struct CredentialOptions {
    /// `--creds USER:PASSWORD`.
    pub creds: Option<String>,
    /// `--authfile PATH`: the only auth file read.
    pub authfile: Option<PathBuf>,
}

impl fmt::Debug for CredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialOptions")
            .field("creds", &self.creds.as_ref().map(|_| Redacted))
            .field("authfile", &self.authfile)
            .finish()
    }
}

/// Where the environment-dependent files are (so tests can point them at a temp dir).
#[derive(Clone, Debug, Default)]
pub(crate) struct Environment {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`; `~/.config` when unset.
    pub xdg_config_home: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, the directory of docker's `config.json`; `~/.docker` when unset.
    pub docker_config: Option<PathBuf>,
    /// `$PATH`, searched for credential helpers (relative entries are skipped).
    pub path: Option<OsString>,
}

impl Environment {
    /// The process's environment. Empty variables count as unset, and so do relative
    /// XDG directories (as the XDG base directory specification says).
    pub(crate) fn from_process() -> Environment {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let xdg = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
        Environment {
            home: var("HOME").map(PathBuf::from),
            xdg_runtime_dir: xdg("XDG_RUNTIME_DIR"),
            xdg_config_home: xdg("XDG_CONFIG_HOME"),
            registry_auth_file: var("REGISTRY_AUTH_FILE").map(PathBuf::from),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            path: std::env::var_os("PATH"),
        }
    }
}

/// Credentials for `registry` (a host[:port] as normalised: `docker.io` for Docker
/// Hub), or None for anonymous access.
///
/// `repository` (the path within the registry, `library/busybox`), when given, also
/// matches podman's repository-scoped `auths` keys (`quay.io/ns` or `quay.io/ns/repo`);
/// the most specific key wins. Without it only whole-registry keys match.
pub(crate) fn lookup(
    registry: &str,
    repository: Option<&str>,
    options: &CredentialOptions,
    env: &Environment,
) -> Result<Option<Credentials>> {
    if let Some(creds) = &options.creds {
        return parse_creds(creds).map(Some);
    }
    let registry = canonical_host(registry);
    if let Some(authfile) = &options.authfile {
        if !authfile.exists() {
            return Err(Error::Usage(format!(
                "{} {}: no such file",
                Setting::Authfile,
                shown(&authfile.display().to_string())
            )));
        }
    }
    for (path, legacy) in auth_files(options, env) {
        let found = lookup_in_file(&path, legacy, &registry, repository, env, HELPER_TIMEOUT)?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// `--creds USER:PASSWORD`, split at the first colon.
fn parse_creds(value: &str) -> Result<Credentials> {
    let Some((username, password)) = value.split_once(':') else {
        return Err(Error::Usage(format!(
            "{}: no password given (use {0} USER:PASSWORD; dockhand does not prompt)",
            Setting::Creds
        )));
    };
    if username.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the user name is empty",
            Setting::Creds
        )));
    }
    if password.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the password is empty (use {0} USER:PASSWORD; dockhand does not prompt)",
            Setting::Creds
        )));
    }
    Ok(Credentials::Basic {
        username: username.into(),
        password: password.into(),
    })
}

/// The auth files to read, in order, each with whether it is in the legacy format
/// (`~/.dockercfg`: the whole object is the `auths` map).
fn auth_files(options: &CredentialOptions, env: &Environment) -> Vec<(PathBuf, bool)> {
    if let Some(authfile) = &options.authfile {
        return vec![(authfile.clone(), false)];
    }
    let mut files = Vec::new();
    if let Some(file) = &env.registry_auth_file {
        files.push((file.clone(), false));
    }
    if let Some(dir) = &env.xdg_runtime_dir {
        files.push((dir.join("containers/auth.json"), false));
    }
    let config_home = (env.xdg_config_home.clone())
        .or_else(|| env.home.as_ref().map(|home| home.join(".config")));
    if let Some(dir) = config_home {
        files.push((dir.join("containers/auth.json"), false));
    }
    let docker_config =
        (env.docker_config.clone()).or_else(|| env.home.as_ref().map(|home| home.join(".docker")));
    if let Some(dir) = docker_config {
        files.push((dir.join("config.json"), false));
    }
    if let Some(home) = &env.home {
        files.push((home.join(".dockercfg"), true));
    }
    files
}

/// The credentials `path` gives for `registry` (canonical), if any.
fn lookup_in_file(
    path: &Path,
    legacy: bool,
    registry: &str,
    repository: Option<&str>,
    env: &Environment,
    timeout: Duration,
) -> Result<Option<Credentials>> {
    let Some(document) = read_auth_file(path)? else {
        return Ok(None);
    };
    let file = shown(&path.display().to_string());
    let Value::Object(document) = document else {
        return Err(Error::Credentials(format!("{file}: not a JSON object")));
    };
    let (auths, helpers, store) = if legacy {
        (Some(&document), None, None)
    } else {
        (
            object_field(&document, "auths", &file)?,
            object_field(&document, "credHelpers", &file)?,
            document.get("credsStore"),
        )
    };

    if let Some(helpers) = helpers {
        let mut found: Option<(&String, &Value)> = None;
        for (key, helper) in helpers {
            if canonical_host(key_host(key).0) == registry && (found.is_none() || key == registry) {
                found = Some((key, helper));
            }
        }
        if let Some((key, helper)) = found {
            let Value::String(helper) = helper else {
                return Err(Error::Credentials(format!(
                    "{file}: credHelpers entry \"{}\" is not a string",
                    shown(key)
                )));
            };
            return run_named_helper(helper, registry, &file, env, timeout);
        }
    }

    if let Some(auths) = auths {
        // (specificity, exact key, file order) ranks the matching entries.
        let mut candidates: Vec<(usize, bool, usize, &String, &Value)> = Vec::new();
        for (order, (key, entry)) in auths.iter().enumerate() {
            let (host, scope) = key_host(key);
            let scope = if legacy { None } else { scope };
            if canonical_host(host) != registry {
                continue;
            }
            let specificity = match (scope, repository) {
                (None, _) => 0,
                (Some(scope), Some(repository)) if in_scope(repository, scope) => {
                    scope.split('/').count()
                }
                (Some(_), _) => continue,
            };
            candidates.push((specificity, key == registry, order, key, entry));
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for (_, _, _, key, entry) in candidates {
            if let Some(found) = decode_entry(entry, key, &file)? {
                return Ok(Some(found));
            }
        }
    }

    match store {
        None => Ok(None),
        Some(Value::String(helper)) if helper.is_empty() => Ok(None),
        Some(Value::String(helper)) => run_named_helper(helper, registry, &file, env, timeout),
        Some(_) => Err(Error::Credentials(format!(
            "{file}: credsStore is not a string"
        ))),
    }
}

/// The object `name` of `document`, if present.
fn object_field<'a>(
    document: &'a Map<String, Value>,
    name: &str,
    file: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    match document.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Error::Credentials(format!(
            "{file}: {name} is not a JSON object"
        ))),
    }
}

/// The parsed auth file, or None if there is none. Errors name the file and never
/// quote it (serde_json's type errors would).
fn read_auth_file(path: &Path) -> Result<Option<Value>> {
    let file = || shown(&path.display().to_string());
    let unreadable = |e: io::Error| Error::Credentials(format!("{}: cannot read: {e}", file()));
    // Checked before opening, so that a FIFO does not block the open.
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
        Ok(meta) if !meta.is_file() => {
            return Err(Error::Credentials(format!(
                "{}: not a regular file",
                file()
            )))
        }
        Ok(_) => {}
    }
    let mut data = Vec::new();
    match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
        Ok(handle) => handle
            .take(MAX_AUTH_FILE + 1)
            .read_to_end(&mut data)
            .map_err(unreadable)?,
    };
    if data.len() as u64 > MAX_AUTH_FILE {
        return Err(Error::Credentials(format!(
            "{}: larger than 1 MiB, not an auth file",
            file()
        )));
    }
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_slice(&data).map(Some).map_err(|e| {
        Error::Credentials(format!(
            "{}: not valid JSON (error at line {}, column {})",
            file(),
            e.line(),
            e.column()
        ))
    })
}

/// The credentials of one `auths` entry; None for an entry with neither `auth` nor
/// `identitytoken` (as docker writes when a `credsStore` holds the secret).
fn decode_entry(entry: &Value, key: &str, file: &str) -> Result<Option<Credentials>> {
    let problem =
        |what: &str| Error::Credentials(format!("{file}: auths entry \"{}\": {what}", shown(key)));
    let Value::Object(entry) = entry else {
        return Err(problem("not a JSON object"));
    };
    let string = |name: &str| match entry.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(problem(&format!("{name} is not a string"))),
    };
    let (auth, token) = (string("auth")?, string("identitytoken")?);
    let user_password = if auth.is_empty() {
        None
    } else {
        // Padding is optional: some tools write it, some do not.
        const ENGINE: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        // The decoder's message names the offending byte: not shown.
        let decoded = ENGINE
            .decode(auth)
            .map_err(|_| problem("auth is not valid base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| problem("auth is not UTF-8"))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(problem("auth is not base64 of USER:PASSWORD"));
        };
        Some((username.to_string(), password.to_string()))
    };
    Ok(match (user_password, token) {
        (user_password, token) if !token.is_empty() => Some(Credentials::IdentityToken {
            username: user_password
                .map(|(username, _)| username)
                .unwrap_or_default(),
            token: token.to_string(),
        }),
        (Some((username, password)), _) => Some(Credentials::Basic { username, password }),
        (None, _) => None,
    })
}

/// The host of an `auths` or `credHelpers` key, and its repository scope if it has one.
/// A key with a scheme (`https://host/v1/`, docker's old form) and a key whose path is
/// the API's (`host/v1/`, `host/v2`) name the whole registry; `host/ns/repo` (podman)
/// names a repository or namespace.
fn key_host(key: &str) -> (&str, Option<&str>) {
    let lower = |prefix: &str| {
        key.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let (rest, url) = if lower("https://") {
        (&key[8..], true)
    } else if lower("http://") {
        (&key[7..], true)
    } else {
        (key, false)
    };
    let Some((host, path)) = rest.split_once('/') else {
        return (rest, None);
    };
    let path = path.trim_matches('/');
    if url || path.is_empty() || path == "v1" || path == "v2" {
        (host, None)
    } else {
        (host, Some(path))
    }
}

/// `host` lowercased, with Docker Hub's other names mapped to `docker.io`.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// True if `repository` is `scope` or inside it (`ns` holds `ns/repo`, not `nsx`).
fn in_scope(repository: &str, scope: &str) -> bool {
    repository
        .strip_prefix(scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Run the credential helper `docker-credential-NAME` for `registry`, as `file`
/// configures it.
fn run_named_helper(
    name: &str,
    registry: &str,
    file: &str,
    env: &Environment,
    timeout: Duration,
) -> Result<Option<Credentials>> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !plain {
        return Err(Error::Credentials(format!(
            "{file}: credential helper name \"{}\" is not a plain name",
            shown(name)
        )));
    }
    let program = format!("docker-credential-{name}");
    let Some(path) = find_in_path(&program, env.path.as_deref()) else {
        return Err(Error::Credentials(format!(
            "credential helper {program} (named in {file}) is not in $PATH"
        )));
    };
    let server = if registry == DOCKER_HUB {
        DOCKER_HUB_SERVER_URL
    } else {
        registry
    };
    run_helper(&path, &program, server, timeout)
}

/// The executable `program` in the absolute directories of `path`.
fn find_in_path(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Run a credential helper's `get` for `server_url` and read its answer.
fn run_helper(
    program: &Path,
    name: &str,
    server_url: &str,
    timeout: Duration,
) -> Result<Option<Credentials>> {
    let failed = |what: String| Error::Credentials(format!("credential helper {name}: {what}"));
    let deadline = Instant::now() + timeout;
    let mut child = spawn_helper(program).map_err(|e| failed(format!("cannot run: {e}")))?;
    let stdin = child.stdin.take();
    let input = server_url.to_string();
    // A helper that exits without reading its input is fine: the error is dropped.
    thread::spawn(move || stdin.map(|mut stdin| stdin.write_all(input.as_bytes())));
    let stdout = read_bounded(child.stdout.take());
    let stderr = read_bounded(child.stderr.take());

    let status = wait_until(&mut child, deadline).map_err(|e| failed(format!("{e}")))?;
    let Some(status) = status else {
        return Err(failed(format!(
            "killed after running {} s",
            timeout.as_secs_f64()
        )));
    };
    let collect = |output: mpsc::Receiver<io::Result<Vec<u8>>>| {
        // A helper's child can hold the pipe open after the helper exits.
        let wait = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(wait) {
            Ok(Ok(data)) if data.len() as u64 > MAX_HELPER_OUTPUT => {
                Err(failed("printed more than 1 MiB".into()))
            }
            Ok(Ok(data)) => Ok(data),
            Ok(Err(e)) => Err(failed(format!("cannot read its output: {e}"))),
            Err(_) => Err(failed(format!(
                "output still open after {} s",
                timeout.as_secs_f64()
            ))),
        }
    };
    let (stdout, stderr) = (collect(stdout)?, collect(stderr)?);

    if !status.success() {
        let message = [&stdout, &stderr]
            .into_iter()
            .map(|data| String::from_utf8_lossy(data).trim().to_string())
            .find(|text| !text.is_empty())
            .unwrap_or_default();
        // docker-credential-helpers print "credentials not found in native keychain".
        if message
            .to_ascii_lowercase()
            .contains("credentials not found")
        {
            return Ok(None);
        }
        // Only the first line, escaped and cut: the rest could hold anything.
        let first_line = message.lines().next().unwrap_or_default();
        return Err(failed(if first_line.is_empty() {
            format!("failed ({status})")
        } else {
            format!("failed ({status}): {}", shown(first_line))
        }));
    }
    helper_credentials(&stdout).ok_or_else(|| {
        failed("answered something other than a JSON object with string Username and Secret".into())
    })
}

/// Spawn a helper's `get`, retrying briefly while the executable is busy: a helper
/// that was just written can still be open for writing in a child forked meanwhile.
fn spawn_helper(program: &Path) -> io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        let spawned = Command::new(program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 20 => {
                tries += 1;
                thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Read `pipe` to its end, at most one byte more than [`MAX_HELPER_OUTPUT`], in a
/// thread; closing the pipe then stops a helper that prints without end.
fn read_bounded(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut data = Vec::new();
        let result = match pipe {
            Some(pipe) => pipe
                .take(MAX_HELPER_OUTPUT + 1)
                .read_to_end(&mut data)
                .map(|_| data),
            None => Ok(data),
        };
        let _ = sender.send(result);
    });
    receiver
}

/// The child's exit status, or None if it was still running at `deadline` (it is
/// then killed and reaped).
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The credentials in a helper's answer `{"ServerURL", "Username", "Secret"}`; None
/// inside when it has no secret. None outside when the answer is malformed.
fn helper_credentials(stdout: &[u8]) -> Option<Option<Credentials>> {
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(stdout) else {
        return None;
    };
    let string = |name: &str| match answer.get(name) {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => None,
    };
    let (username, secret) = (string("Username")?, string("Secret")?);
    Some(if secret.is_empty() {
        None
    } else if username == TOKEN_USERNAME {
        Some(Credentials::IdentityToken {
            username: String::new(),
            token: secret,
        })
    } else {
        Some(Credentials::Basic {
            username,
            password: secret,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Mutex;

    use base64::engine::general_purpose::STANDARD;

    /// Tests that write helper scripts and run them hold this, so that no test forks
    /// while another's script is still open for writing.
    static HELPERS: Mutex<()> = Mutex::new(());

    fn helpers_lock() -> std::sync::MutexGuard<'static, ()> {
        HELPERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A temp dir with `home/` and `bin/`, and an environment pointing into it only.
    struct Sandbox {
        dir: tempfile::TempDir,
        env: Environment,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("home")).unwrap();
            fs::create_dir_all(dir.path().join("bin")).unwrap();
            let env = Environment {
                home: Some(dir.path().join("home")),
                path: Some(dir.path().join("bin").into_os_string()),
                ..Environment::default()
            };
            Sandbox { dir, env }
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.dir.path().join(relative)
        }

        /// Write `content` at `relative`, creating directories.
        fn write(&self, relative: &str, content: &str) -> PathBuf {
            let path = self.path(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
            path
        }

        /// Put `docker-credential-NAME` running the shell `script` on the PATH.
        fn helper(&self, name: &str, script: &str) {
            let path = self.write(
                &format!("bin/docker-credential-{name}"),
                &format!("#!/bin/sh\n{script}\n"),
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }

        fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
            lookup(registry, None, &CredentialOptions::default(), &self.env)
        }
    }

    fn auth(user_password: &str) -> String {
        STANDARD.encode(user_password)
    }

    /// An auth.json with one `auths` entry per (key, user:password).
    fn auths(entries: &[(&str, &str)]) -> String {
        let map: Map<String, Value> = entries
            .iter()
            .map(|(key, up)| (key.to_string(), serde_json::json!({ "auth": auth(up) })))
            .collect();
        serde_json::json!({ "auths": map }).to_string()
    }

    fn basic(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    fn message(result: Result<Option<Credentials>>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn creds_option_forms() {
        let env = Sandbox::new();
        env.write(
            "home/.docker/config.json",
            &auths(&[("r.example", "file:pw")]),
        );
        let with = |creds: &str| {
            let options = CredentialOptions {
                creds: Some(creds.into()),
                authfile: None,
            };
            lookup("r.example", None, &options, &env.env)
        };
        assert_eq!(with("u:p").unwrap(), basic("u", "p"));
        assert_eq!(with("u:p:q").unwrap(), basic("u", "p:q"));
        assert_eq!(with("u::").unwrap(), basic("u", ":"));
        for (bad, says) in [
            ("user", "no password"),
            ("", "no password"),
            (":secret", "user name is empty"),
            ("user:", "password is empty"),
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.is_usage(), "{bad:?}: {err}");
            let text = err.to_string();
            assert!(text.contains("`creds`") && text.contains(says), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn authfile_is_the_only_file_read() {
        let env = Sandbox::new();
        env.write(
            "home/.docker/config.json",
            &auths(&[("r.example", "docker:pw"), ("other.example", "o:pw")]),
        );
        let authfile = env.write("given.json", &auths(&[("r.example", "given:pw")]));
        let options = CredentialOptions {
            creds: None,
            authfile: Some(authfile),
        };
        assert_eq!(
            lookup("r.example", None, &options, &env.env).unwrap(),
            basic("given", "pw")
        );
        assert_eq!(
            lookup("other.example", None, &options, &env.env).unwrap(),
            None
        );

        let options = CredentialOptions {
            creds: None,
            authfile: Some(env.path("missing.json")),
        };
        let err = lookup("r.example", None, &options, &env.env).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("`authfile`"),
            "{err}"
        );
    }

    #[test]
    fn files_in_order_of_precedence() {
        let mut env = Sandbox::new();
        let files = [
            "registry-auth.json",
            "run/containers/auth.json",
            "xdg-config/containers/auth.json",
            "docker-config/config.json",
        ];
        for (n, file) in files.iter().enumerate() {
            env.write(file, &auths(&[("r.example", &format!("user{n}:pw"))]));
        }
        env.write(
            "home/.dockercfg",
            &serde_json::json!({ "r.example": { "auth": auth("user4:pw"), "email": "e" } })
                .to_string(),
        );
        env.env.registry_auth_file = Some(env.path(files[0]));
        env.env.xdg_runtime_dir = Some(env.path("run"));
        env.env.xdg_config_home = Some(env.path("xdg-config"));
        env.env.docker_config = Some(env.path("docker-config"));
        for (n, file) in files.iter().enumerate() {
            assert_eq!(
                env.lookup("r.example").unwrap(),
                basic(&format!("user{n}"), "pw")
            );
            fs::remove_file(env.path(file)).unwrap();
        }
        assert_eq!(env.lookup("r.example").unwrap(), basic("user4", "pw"));
        fs::remove_file(env.path("home/.dockercfg")).unwrap();
        assert_eq!(env.lookup("r.example").unwrap(), None);
    }

    #[test]
    fn defaults_under_home_and_docker_config_override() {
        let mut env = Sandbox::new();
        env.write(
            "home/.docker/config.json",
            &auths(&[("r.example", "dotdocker:pw")]),
        );
        assert_eq!(env.lookup("r.example").unwrap(), basic("dotdocker", "pw"));
        env.write(
            "home/.config/containers/auth.json",
            &auths(&[("r.example", "dotconfig:pw")]),
        );
        assert_eq!(env.lookup("r.example").unwrap(), basic("dotconfig", "pw"));
        // $XDG_CONFIG_HOME replaces ~/.config; $DOCKER_CONFIG replaces ~/.docker.
        env.env.xdg_config_home = Some(env.path("elsewhere"));
        assert_eq!(env.lookup("r.example").unwrap(), basic("dotdocker", "pw"));
        env.env.docker_config = Some(env.path("elsewhere"));
        assert_eq!(env.lookup("r.example").unwrap(), None);
        // No home at all: nothing to read, no error.
        env.env.home = None;
        assert_eq!(env.lookup("r.example").unwrap(), None);
    }

    #[test]
    fn a_file_without_credentials_for_the_registry_passes_on() {
        let mut env = Sandbox::new();
        env.env.registry_auth_file = Some(env.write(
            "first.json",
            &serde_json::json!({ "auths": { "r.example": {}, "other.example": { "auth": auth("o:p") } } })
                .to_string(),
        ));
        env.write(
            "home/.docker/config.json",
            &auths(&[("r.example", "second:pw")]),
        );
        assert_eq!(env.lookup("r.example").unwrap(), basic("second", "pw"));
        // An empty file, `{}` and `"auths": null` hold nothing.
        for content in ["", " \n", "{}", r#"{"auths": null}"#] {
            env.write("first.json", content);
            assert_eq!(env.lookup("r.example").unwrap(), basic("second", "pw"));
        }
    }

    #[test]
    fn key_forms() {
        let env = Sandbox::new();
        for key in [
            "r.example",
            "R.Example",
            "https://r.example",
            "http://r.example",
            "r.example/",
            "r.example/v1/",
            "r.example/v2",
            "https://r.example/v2/",
            "HTTPS://r.example/v1/",
            "https://r.example/some/path",
        ] {
            env.write("home/.docker/config.json", &auths(&[(key, "u:p")]));
            assert_eq!(env.lookup("r.example").unwrap(), basic("u", "p"), "{key}");
            assert_eq!(env.lookup("R.EXAMPLE").unwrap(), basic("u", "p"), "{key}");
            assert_eq!(env.lookup("r.example:5000").unwrap(), None, "{key}");
            assert_eq!(env.lookup("example").unwrap(), None, "{key}");
        }
        env.write(
            "home/.docker/config.json",
            &auths(&[("localhost", "plain:p"), ("localhost:5000", "port:p")]),
        );
        assert_eq!(env.lookup("localhost:5000").unwrap(), basic("port", "p"));
        assert_eq!(env.lookup("localhost").unwrap(), basic("plain", "p"));
        assert_eq!(env.lookup("localhost:5001").unwrap(), None);
    }

    #[test]
    fn docker_hub_aliases() {
        let env = Sandbox::new();
        for key in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io/v2/",
        ] {
            env.write("home/.docker/config.json", &auths(&[(key, "hub:p")]));
            for registry in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
                assert_eq!(env.lookup(registry).unwrap(), basic("hub", "p"), "{key}");
            }
            assert_eq!(env.lookup("quay.io").unwrap(), None, "{key}");
        }
        // The exact key wins over an alias, wherever it is in the file.
        env.write(
            "home/.docker/config.json",
            &auths(&[
                ("https://index.docker.io/v1/", "old:p"),
                ("docker.io", "new:p"),
            ]),
        );
        assert_eq!(env.lookup("docker.io").unwrap(), basic("new", "p"));
        // The legacy file keys by the v1 URL.
        let env = Sandbox::new();
        env.write(
            "home/.dockercfg",
            &serde_json::json!({ "https://index.docker.io/v1/": { "auth": auth("legacy:p"), "email": "x@y" } })
                .to_string(),
        );
        assert_eq!(env.lookup("docker.io").unwrap(), basic("legacy", "p"));
    }

    #[test]
    fn repository_scoped_keys() {
        let env = Sandbox::new();
        env.write(
            "home/.config/containers/auth.json",
            &auths(&[
                ("quay.io/ns/repo", "repo:p"),
                ("quay.io", "registry:p"),
                ("quay.io/ns", "namespace:p"),
            ]),
        );
        let scoped = |repository: Option<&str>| {
            lookup(
                "quay.io",
                repository,
                &CredentialOptions::default(),
                &env.env,
            )
            .unwrap()
        };
        assert_eq!(scoped(Some("ns/repo")), basic("repo", "p"));
        assert_eq!(scoped(Some("ns/repo/sub")), basic("repo", "p"));
        assert_eq!(scoped(Some("ns/other")), basic("namespace", "p"));
        assert_eq!(scoped(Some("ns/repository")), basic("namespace", "p"));
        assert_eq!(scoped(Some("nsx/repo")), basic("registry", "p"));
        assert_eq!(scoped(None), basic("registry", "p"));
        // Without a whole-registry key, a scoped key needs a repository inside it.
        env.write(
            "home/.config/containers/auth.json",
            &auths(&[("quay.io/ns", "namespace:p")]),
        );
        assert_eq!(scoped(None), None);
        assert_eq!(scoped(Some("other/repo")), None);
        assert_eq!(scoped(Some("ns/repo")), basic("namespace", "p"));
        // Docker Hub repositories are scoped under docker.io.
        env.write(
            "home/.config/containers/auth.json",
            &auths(&[("docker.io/library/busybox", "bb:p")]),
        );
        let hub = lookup(
            "docker.io",
            Some("library/busybox"),
            &CredentialOptions::default(),
            &env.env,
        );
        assert_eq!(hub.unwrap(), basic("bb", "p"));
    }

    #[test]
    fn identity_tokens() {
        let env = Sandbox::new();
        env.write(
            "home/.docker/config.json",
            &serde_json::json!({ "auths": {
                "a.example": { "auth": auth("me:unused"), "identitytoken": "tok-a" },
                "b.example": { "identitytoken": "tok-b" },
                "c.example": { "auth": auth("me:pw"), "identitytoken": "" },
            } })
            .to_string(),
        );
        assert_eq!(
            env.lookup("a.example").unwrap(),
            Some(Credentials::IdentityToken {
                username: "me".into(),
                token: "tok-a".into()
            })
        );
        assert_eq!(
            env.lookup("b.example").unwrap(),
            Some(Credentials::IdentityToken {
                username: String::new(),
                token: "tok-b".into()
            })
        );
        assert_eq!(env.lookup("c.example").unwrap(), basic("me", "pw"));
    }

    #[test]
    fn auth_values() {
        let env = Sandbox::new();
        let with_auth = |value: &str| {
            env.write(
                "home/.docker/config.json",
                &serde_json::json!({ "auths": { "r.example": { "auth": value } } }).to_string(),
            );
            env.lookup("r.example")
        };
        // Split at the first colon; padding optional.
        assert_eq!(with_auth(&auth("u:p:w")).unwrap(), basic("u", "p:w"));
        assert_eq!(with_auth(&auth("u:")).unwrap(), basic("u", ""));
        let unpadded = auth("user:pw1").trim_end_matches('=').to_string();
        assert_ne!(unpadded, auth("user:pw1"));
        assert_eq!(with_auth(&unpadded).unwrap(), basic("user", "pw1"));
        assert_eq!(with_auth("").unwrap(), None);
        for (bad, says) in [
            ("not*base64-secret", "not valid base64"),
            (&auth("nocolon-secret"), "not base64 of USER:PASSWORD"),
            (&STANDARD.encode(b"u:\xff\xfe"), "not UTF-8"),
        ] {
            let text = message(with_auth(bad));
            assert!(text.contains(says), "{text}");
            assert!(
                text.contains("config.json") && text.contains("\"r.example\""),
                "{text}"
            );
            assert!(!text.contains("secret") && !text.contains(bad), "{text}");
        }
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let env = Sandbox::new();
        let cases = [
            (
                r#"{"auths": {"r.example": {"auth": "c2VjcmV0"#,
                "not valid JSON",
            ),
            (
                r#"{"auths": {"r.example": {"auth": "secret"}}} trailing"#,
                "not valid JSON",
            ),
            (r#"["secret"]"#, "not a JSON object"),
            (r#"{"auths": ["secret"]}"#, "auths is not a JSON object"),
            (
                r#"{"credHelpers": "secret"}"#,
                "credHelpers is not a JSON object",
            ),
            (
                r#"{"credsStore": ["secret"]}"#,
                "credsStore is not a string",
            ),
            (
                r#"{"auths": {"r.example": "secret"}}"#,
                "\"r.example\": not a JSON object",
            ),
            (
                r#"{"auths": {"r.example": {"auth": ["secret"]}}}"#,
                "auth is not a string",
            ),
            (
                r#"{"auths": {"r.example": {"identitytoken": 7}}}"#,
                "identitytoken is not a string",
            ),
            (
                r#"{"credHelpers": {"r.example": 1}}"#,
                "credHelpers entry \"r.example\" is not a string",
            ),
        ];
        for (content, says) in cases {
            env.write("home/.docker/config.json", content);
            let text = message(env.lookup("r.example"));
            assert!(text.starts_with("credentials: "), "{text}");
            assert!(
                text.contains(".docker/config.json") && text.contains(says),
                "{content}: {text}"
            );
            assert!(
                !text.contains("secret") && !text.contains("c2VjcmV0"),
                "{text}"
            );
        }
        // Entries for other registries are not looked at.
        env.write(
            "home/.docker/config.json",
            r#"{"auths": {"other.example": {"auth": "!!"}}}"#,
        );
        assert_eq!(env.lookup("r.example").unwrap(), None);
    }

    #[test]
    fn oversized_and_odd_files() {
        let env = Sandbox::new();
        let mut big = auths(&[("r.example", "u:p")]);
        big.pop();
        big.push_str(&format!(
            ", \"pad\": \"{}\"}}",
            "x".repeat(MAX_AUTH_FILE as usize)
        ));
        env.write("home/.docker/config.json", &big);
        assert!(message(env.lookup("r.example")).contains("larger than 1 MiB"));
        // Just under the limit is read.
        let mut fits = auths(&[("r.example", "u:p")]);
        fits.pop();
        let pad = MAX_AUTH_FILE as usize - fits.len() - ", \"pad\": \"\"}".len();
        fits.push_str(&format!(", \"pad\": \"{}\"}}", "x".repeat(pad)));
        assert_eq!(fits.len() as u64, MAX_AUTH_FILE);
        env.write("home/.docker/config.json", &fits);
        assert_eq!(env.lookup("r.example").unwrap(), basic("u", "p"));

        fs::remove_file(env.path("home/.docker/config.json")).unwrap();
        fs::create_dir(env.path("home/.docker/config.json")).unwrap();
        assert!(message(env.lookup("r.example")).contains("not a regular file"));
    }

    #[test]
    fn cred_helpers() {
        let _lock = helpers_lock();
        let env = Sandbox::new();
        // Answers for the URL it is given; echoes the URL in the user name.
        env.helper(
            "test",
            r#"[ "$1" = get ] || exit 9
url=$(cat)
case "$url" in
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"tok"}' ;;
  *) printf '{"ServerURL":"%s","Username":"for %s","Secret":"s3"}' "$url" "$url" ;;
esac"#,
        );
        env.write(
            "home/.docker/config.json",
            &serde_json::json!({
                "auths": { "r.example:5000": { "auth": auth("stale:pw") }, "s.example": { "auth": auth("file:pw") } },
                "credHelpers": { "r.example:5000": "test", "https://index.docker.io/v1/": "test", "token.example": "test" },
            })
            .to_string(),
        );
        assert_eq!(
            env.lookup("r.example:5000").unwrap(),
            basic("for r.example:5000", "s3")
        );
        assert_eq!(
            env.lookup("docker.io").unwrap(),
            basic("for https://index.docker.io/v1/", "s3")
        );
        assert_eq!(
            env.lookup("token.example").unwrap(),
            Some(Credentials::IdentityToken {
                username: String::new(),
                token: "tok".into()
            })
        );
        // Registries without a credHelpers entry use auths.
        assert_eq!(env.lookup("s.example").unwrap(), basic("file", "pw"));
    }

    #[test]
    fn creds_store_comes_after_auths() {
        let _lock = helpers_lock();
        let env = Sandbox::new();
        env.helper(
            "store",
            r#"url=$(cat); printf '{"Username":"store","Secret":"for %s"}' "$url""#,
        );
        env.write(
            "home/.docker/config.json",
            &serde_json::json!({
                "auths": { "r.example": {}, "s.example": { "auth": auth("file:pw") } },
                "credsStore": "store",
            })
            .to_string(),
        );
        assert_eq!(
            env.lookup("r.example").unwrap(),
            basic("store", "for r.example")
        );
        assert_eq!(env.lookup("s.example").unwrap(), basic("file", "pw"));
        assert_eq!(
            env.lookup("t.example").unwrap(),
            basic("store", "for t.example")
        );
    }

    #[test]
    fn helper_without_credentials_passes_to_the_next_file() {
        let _lock = helpers_lock();
        let mut env = Sandbox::new();
        env.helper(
            "none",
            "cat >/dev/null; echo 'credentials not found in native keychain'; exit 1",
        );
        env.helper(
            "empty",
            r#"cat >/dev/null; echo '{"Username":"","Secret":""}'"#,
        );
        env.env.registry_auth_file = Some(
            env.write(
                "first.json",
                &serde_json::json!({
                    "auths": { "r.example": { "auth": auth("stale:pw") } },
                    "credHelpers": { "r.example": "none" },
                    "credsStore": "empty",
                })
                .to_string(),
            ),
        );
        env.write(
            "home/.docker/config.json",
            &auths(&[("r.example", "second:pw"), ("s.example", "second:pw")]),
        );
        // credHelpers decides alone for its registry: the stale entry beside it is not used.
        assert_eq!(env.lookup("r.example").unwrap(), basic("second", "pw"));
        assert_eq!(env.lookup("s.example").unwrap(), basic("second", "pw"));
        assert_eq!(env.lookup("t.example").unwrap(), None);
    }

    #[test]
    fn failing_helpers_are_errors_naming_the_helper() {
        let _lock = helpers_lock();
        let env = Sandbox::new();
        let cases = [
            (
                "printf 'boom: \\033[31mred\\nsecond line secret\\n' >&2; exit 3",
                "docker-credential-h: failed (exit status: 3): boom: \\x1b[31mred",
            ),
            ("exit 4", "docker-credential-h: failed (exit status: 4)"),
            ("kill -9 $$", "docker-credential-h: failed (signal: 9"),
            (
                "echo 'not json secret'",
                "docker-credential-h: answered something other than a JSON object",
            ),
            (
                r#"echo '{"Username": 1, "Secret": "secret"}'"#,
                "docker-credential-h: answered something other than a JSON object",
            ),
            (
                "head -c 1100000 /dev/zero",
                "docker-credential-h: printed more than 1 MiB",
            ),
            ("yes secret", "docker-credential-h: printed more than 1 MiB"),
        ];
        for (script, says) in cases {
            env.helper("h", script);
            env.write(
                "home/.docker/config.json",
                r#"{"credHelpers": {"r.example": "h"}}"#,
            );
            let text = message(env.lookup("r.example"));
            assert!(text.contains(says), "{script}: {text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn helper_names_and_path() {
        let _lock = helpers_lock();
        let mut env = Sandbox::new();
        for name in ["../../bin/sh", ".hidden", "a b", "x\n"] {
            env.write(
                "home/.docker/config.json",
                &serde_json::json!({ "credsStore": name }).to_string(),
            );
            let text = message(env.lookup("r.example"));
            assert!(text.contains("is not a plain name"), "{name:?}: {text}");
        }
        // An empty credsStore (docker writes one) means none.
        env.write("home/.docker/config.json", r#"{"credsStore": ""}"#);
        assert_eq!(env.lookup("r.example").unwrap(), None);
        env.write("home/.docker/config.json", r#"{"credsStore": "absent"}"#);
        let text = message(env.lookup("r.example"));
        assert!(
            text.contains("docker-credential-absent") && text.contains("not in $PATH"),
            "{text}"
        );
        // Not executable: not found.
        env.write("bin/docker-credential-absent", "#!/bin/sh\n");
        assert!(message(env.lookup("r.example")).contains("not in $PATH"));
        // Relative PATH entries are skipped; a later absolute one is used.
        env.helper("absent", r#"echo '{"Username":"u","Secret":"p"}'"#);
        let bin = env.path("bin");
        env.env.path = Some(std::env::join_paths([PathBuf::from("bin"), bin.clone()]).unwrap());
        assert_eq!(env.lookup("r.example").unwrap(), basic("u", "p"));
        env.env.path = Some(std::env::join_paths([PathBuf::from("bin")]).unwrap());
        assert!(message(env.lookup("r.example")).contains("not in $PATH"));
        env.env.path = None;
        assert!(message(env.lookup("r.example")).contains("not in $PATH"));
    }

    #[test]
    fn slow_helpers_are_killed() {
        let _lock = helpers_lock();
        let env = Sandbox::new();
        env.helper("slow", "exec sleep 20");
        let path = env.path("bin/docker-credential-slow");
        let started = Instant::now();
        let err = run_helper(
            &path,
            "docker-credential-slow",
            "r.example",
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("docker-credential-slow: killed after running 0.3 s"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // Exits at once but leaves a child holding its output open.
        env.helper("lingering", "sleep 3 &\necho '{}'");
        let path = env.path("bin/docker-credential-lingering");
        let started = Instant::now();
        let err = run_helper(
            &path,
            "docker-credential-lingering",
            "r.example",
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("output still open"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn helper_that_ignores_its_input() {
        let _lock = helpers_lock();
        let env = Sandbox::new();
        env.helper("quick", r#"echo '{"Username":"u","Secret":"p"}'"#);
        env.write("home/.docker/config.json", r#"{"credsStore": "quick"}"#);
        let long = format!("{}.example", "a".repeat(200_000));
        assert_eq!(env.lookup(&long).unwrap(), basic("u", "p"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = [
            Credentials::Basic {
                username: "alice".into(),
                password: "hunter2".into(),
            },
            Credentials::IdentityToken {
                username: "bob".into(),
                token: "refresh-xyz".into(),
            },
        ];
        let shown = format!("{creds:?} {creds:#?}");
        assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("refresh-xyz"),
            "{shown}"
        );
        let options = CredentialOptions {
            creds: Some("alice:hunter2".into()),
            authfile: Some("auth.json".into()),
        };
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("auth.json"),
            "{shown}"
        );
    }

    #[test]
    fn key_parsing() {
        assert_eq!(key_host("quay.io"), ("quay.io", None));
        assert_eq!(key_host("quay.io/ns/repo/"), ("quay.io", Some("ns/repo")));
        assert_eq!(key_host("https://quay.io/ns/repo"), ("quay.io", None));
        assert_eq!(key_host("localhost:5000/v2/"), ("localhost:5000", None));
        assert_eq!(key_host("https://"), ("", None));
        assert_eq!(key_host("h\u{e9}/x"), ("h\u{e9}", Some("x")));
        assert!(in_scope("ns/repo", "ns"));
        assert!(!in_scope("nsx/repo", "ns"));
        assert!(in_scope("ns", "ns"));
    }
}
