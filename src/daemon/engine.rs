//! A minimal, synchronous HTTP/1.1 client for the Docker Engine API (and podman's
//! Docker-compatible service): one request per connection, over a Unix socket or plain
//! TCP, with the API version negotiated once. The daemon's answers are untrusted input:
//! header sizes, chunk lines and error bodies are capped.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{DaemonError, DaemonProblem as Problem};
use crate::error::{Error, Result};

/// The socket when `DOCKER_HOST` is unset.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// The newest API version dockhand speaks: Docker 20.10's, which podman's
/// Docker-compatible service also answers. Everything used here exists since 1.24.
pub(crate) const API_VERSION: (u32, u32) = (1, 41);
/// Most bytes of a status line and headers.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header lines in one answer.
pub(crate) const MAX_HEADERS: usize = 100;
/// Most bytes of a chunk-size line (with its extensions) or of the trailers.
const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of an error body or of one line of a JSON message stream kept.
pub(crate) const MAX_MESSAGE_BYTES: u64 = 64 * 1024;
/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a short request (`/_ping`, `/version`) may wait for bytes.
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a save or a load may wait for bytes: the legacy image store builds the
/// whole archive before its first byte, and applies every layer before answering a
/// load, both of which take minutes for big images.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// A Unix socket.
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl Address {
    /// The address `DOCKER_HOST` names, or the default socket.
    pub(crate) fn from_env() -> Result<Address> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => {
                if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
                    return Err(Error::Unsupported(format!(
                        "DOCKER_TLS_VERIFY is set: dockhand talks to a daemon over a Unix socket or plain tcp:// only, not TLS (DOCKER_HOST is {})",
                        crate::text::shown(&host)
                    )));
                }
                Address::parse(&host)
            }
            _ => Address::parse(DEFAULT_HOST),
        }
    }

    /// Parse `unix:///PATH` or `tcp://HOST:PORT`.
    pub(crate) fn parse(text: &str) -> Result<Address> {
        let shown = crate::text::shown(text);
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(Error::Usage(format!(
                    "DOCKER_HOST {shown}: no socket path after unix://"
                )));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let authority = rest.trim_end_matches('/');
            let ok = crate::model::reference::split_authority(authority)
                .is_ok_and(|(host, port)| !host.is_empty() && port.is_some());
            if !ok || authority.contains('/') {
                return Err(Error::Usage(format!(
                    "DOCKER_HOST {shown}: write tcp://HOST:PORT"
                )));
            }
            return Ok(Address::Tcp(authority.to_string()));
        }
        if text.starts_with("https://") || text.starts_with("ssh://") || text.starts_with("npipe:")
        {
            return Err(Error::Unsupported(format!(
                "DOCKER_HOST {shown}: dockhand talks to a daemon over unix:// or plain tcp:// only"
            )));
        }
        Err(Error::Usage(format!(
            "DOCKER_HOST {shown}: expected unix:///PATH or tcp://HOST:PORT"
        )))
    }

    /// The address as DOCKER_HOST writes it, for messages.
    pub(crate) fn shown(&self) -> String {
        match self {
            Address::Unix(path) => {
                format!("unix://{}", crate::text::shown(&path.to_string_lossy()))
            }
            Address::Tcp(authority) => format!("tcp://{}", crate::text::shown(authority)),
        }
    }

    fn host_header(&self) -> &str {
        match self {
            // What the docker CLI sends over a socket; the daemon ignores it.
            Address::Unix(_) => "docker",
            Address::Tcp(authority) => authority,
        }
    }

    fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        let stream = match self {
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            Address::Tcp(authority) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut connected = None;
                for addr in authority.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                Stream::Tcp(connected.ok_or(last)?)
            }
        };
        stream.set_timeouts(timeout)?;
        Ok(stream)
    }
}

/// A connection to the daemon.
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
        }
    }

    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A daemon at an address, with the API version both sides speak.
pub(crate) struct Engine {
    address: Address,
    /// `1.41`: the prefix of every path after the ping.
    version: String,
}

impl Engine {
    /// Connect to the daemon `DOCKER_HOST` names and agree on an API version:
    /// `DOCKER_API_VERSION` when set, else the lower of the daemon's and ours.
    pub(crate) fn connect() -> Result<Engine> {
        Engine::at(Address::from_env()?)
    }

    /// [`Engine::connect`] to `address`.
    pub(crate) fn at(address: Address) -> Result<Engine> {
        let mut engine = Engine {
            address,
            version: String::new(),
        };
        if let Some(pinned) = std::env::var("DOCKER_API_VERSION")
            .ok()
            .filter(|v| !v.is_empty())
        {
            if parse_version(&pinned).is_none() {
                return Err(Error::Usage(format!(
                    "DOCKER_API_VERSION {}: expected a version such as 1.41",
                    crate::text::shown(&pinned)
                )));
            }
            engine.version = pinned;
            return Ok(engine);
        }
        let ping = engine.request("GET", "/_ping", SHORT_TIMEOUT)?;
        let mut answer = ping.finish_request()?;
        let server = match answer.header("api-version").and_then(parse_version) {
            Some(v) => v,
            None => {
                drop(answer.error_body());
                // An older daemon: `/version` says it in its JSON.
                let mut version = engine
                    .request("GET", "/version", SHORT_TIMEOUT)?
                    .finish_request()?;
                if version.status != 200 {
                    return Err(engine.refused(&mut version, None));
                }
                let body = version.error_body();
                let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                value["ApiVersion"]
                    .as_str()
                    .and_then(parse_version)
                    .ok_or_else(|| {
                        engine.error(
                            None,
                            Problem::Protocol(
                                "it names no API version (neither an API-Version header nor /version's ApiVersion)"
                                    .into(),
                            ),
                        )
                    })?
            }
        };
        let (major, minor) = server.min(API_VERSION);
        engine.version = format!("{major}.{minor}");
        Ok(engine)
    }

    /// The daemon's address, for messages.
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// An error about this daemon (and the image `image`).
    pub(crate) fn error(&self, image: Option<&str>, problem: Problem) -> Error {
        Error::Daemon(Box::new(DaemonError {
            address: self.address.shown(),
            image: image.map(str::to_string),
            problem,
        }))
    }

    /// The error for a non-2xx answer: the daemon's `message`, its status.
    pub(crate) fn refused(&self, answer: &mut Answer, image: Option<&str>) -> Error {
        let status = answer.status;
        let message = daemon_message(&answer.error_body());
        let problem = match status {
            404 if image.is_some() => Problem::NoSuchImage { message },
            _ => Problem::Refused { status, message },
        };
        self.error(image, problem)
    }

    /// Start a request to `path` (unversioned paths start with `/_`): the headers are
    /// sent; a body, if any, follows through [`Request`].
    pub(crate) fn request(&self, method: &str, path: &str, timeout: Duration) -> Result<Request> {
        self.request_with_body(method, path, None, timeout)
    }

    /// Start a request with a chunked body of `content_type`.
    pub(crate) fn request_with_body(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        timeout: Duration,
    ) -> Result<Request> {
        let stream = self
            .address
            .connect(timeout)
            .map_err(|e| self.connect_error(e))?;
        let reader = stream.try_clone().map_err(|e| self.io_error(e))?;
        let full = if path.starts_with("/_") || self.version.is_empty() {
            path.to_string()
        } else {
            format!("/v{}{path}", self.version)
        };
        let mut head = format!(
            "{method} {full} HTTP/1.1\r\nHost: {}\r\nUser-Agent: dockhand/{}\r\nConnection: close\r\n",
            self.address.host_header(),
            env!("CARGO_PKG_VERSION")
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
            ));
        }
        head.push_str("\r\n");
        let mut writer = BufWriter::with_capacity(1 << 20, stream);
        writer
            .write_all(head.as_bytes())
            .map_err(|e| self.io_error(e))?;
        let broken = Arc::new(AtomicBool::new(false));
        Ok(Request {
            body: Body {
                writer,
                chunked: content_type.is_some(),
                broken: Arc::clone(&broken),
            },
            answer: Pending {
                reader,
                address: self.address.clone(),
                broken,
            },
        })
    }

    fn connect_error(&self, e: io::Error) -> Error {
        let problem = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Problem::NotRunning,
            io::ErrorKind::PermissionDenied => Problem::PermissionDenied,
            _ => Problem::Io(format!("connecting: {e}")),
        };
        self.error(None, problem)
    }

    fn io_error(&self, e: io::Error) -> Error {
        io_problem(&self.address, e)
    }
}

fn io_problem(address: &Address, e: io::Error) -> Error {
    let e = match e.downcast::<Error>() {
        Ok(ours) => return ours,
        Err(e) => e,
    };
    Error::Daemon(Box::new(DaemonError {
        address: address.shown(),
        image: None,
        problem: Problem::Io(e.to_string()),
    }))
}

/// `1.41` as numbers.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(major)?, number(minor)?))
}

/// The daemon's `{"message": ...}`, or its body as text when it is not that JSON.
pub(crate) fn daemon_message(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match value["message"].as_str() {
        Some(m) => m.trim().to_string(),
        None => body.trim().to_string(),
    }
}

/// A request whose headers are sent: write its body (chunked), then read the answer.
pub(crate) struct Request {
    body: Body,
    answer: Pending,
}

impl Write for Request {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.body.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.body.flush()
    }
}

impl Request {
    /// End the body (the terminating chunk) and read the answer's head.
    pub(crate) fn finish_request(self) -> Result<Answer> {
        let (body, answer) = self.split();
        if let Err(e) = body.finish() {
            return Err(answer
                .after_failure()
                .unwrap_or_else(|| io_problem(&answer.address, e)));
        }
        answer.read()
    }

    /// The body to write and the answer to read, apart: a tar writer owns the body.
    pub(crate) fn split(self) -> (Body, Pending) {
        (self.body, self.answer)
    }
}

/// A request's chunked body.
pub(crate) struct Body {
    writer: BufWriter<Stream>,
    chunked: bool,
    /// Set when a write to the daemon failed: it may have answered and closed.
    broken: Arc<AtomicBool>,
}

impl Write for Body {
    /// One chunk per call (a zero-length one would end the body, so none is sent).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        debug_assert!(self.chunked, "a body for a request without one");
        let written = (|| {
            write!(self.writer, "{:x}\r\n", buf.len())?;
            self.writer.write_all(buf)?;
            self.writer.write_all(b"\r\n")
        })();
        self.noting_failure(written).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.writer.flush();
        self.noting_failure(flushed)
    }
}

impl Body {
    fn noting_failure(&self, result: io::Result<()>) -> io::Result<()> {
        if result.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Send the terminating chunk: the daemon takes the body as complete. Until then,
    /// dropping the body leaves it cut off, which the daemon refuses.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if self.chunked {
            let ended = self.writer.write_all(b"0\r\n\r\n");
            self.noting_failure(ended)?;
        }
        self.flush()
    }
}

/// The answer to a request whose body is being written.
pub(crate) struct Pending {
    reader: Stream,
    address: Address,
    broken: Arc<AtomicBool>,
}

impl Pending {
    /// Read the answer's head.
    pub(crate) fn read(self) -> Result<Answer> {
        Answer::read(self.reader, &self.address)
    }

    /// After writing the body failed: the daemon's refusal, when it answered one before
    /// closing, so that its reason is reported rather than a broken pipe. `None` when
    /// the failure was not the daemon's (the body's write never failed) or it said
    /// nothing.
    pub(crate) fn after_failure(&self) -> Option<Error> {
        if !self.broken.load(Ordering::Relaxed) {
            return None;
        }
        let _ = self.shutdown(std::net::Shutdown::Write);
        let reader = self.reader.try_clone().ok()?;
        let mut answer = Answer::read(reader, &self.address).ok()?;
        let engine = Engine {
            address: self.address.clone(),
            version: String::new(),
        };
        if answer.status != 200 {
            return Some(engine.refused(&mut answer, None));
        }
        None
    }

    /// Cut the connection: a body not finished is then incomplete for the daemon.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match &self.reader {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }
}

/// An answer: status, headers, and a body reader.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: AnswerBody,
}

enum AnswerBody {
    Length(io::Take<BufReader<Stream>>),
    Chunked(Chunked<BufReader<Stream>>),
    UntilClose(BufReader<Stream>),
}

impl Answer {
    /// Read the status line and headers (interim 1xx answers skipped).
    pub(crate) fn read(stream: Stream, address: &Address) -> Result<Answer> {
        Answer::read_from(BufReader::with_capacity(1 << 20, stream))
            .map_err(|e| io_problem(address, e))
    }

    fn read_from(mut reader: BufReader<Stream>) -> io::Result<Answer> {
        loop {
            let (status, headers) = read_head(&mut reader)?;
            if (100..200).contains(&status) {
                continue;
            }
            let find = |name: &str| {
                headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
            };
            let chunked = find("transfer-encoding").last().is_some_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
            });
            let lengths = find("content-length");
            let body = if chunked {
                AnswerBody::Chunked(Chunked::new(reader))
            } else if let Some(first) = lengths.first() {
                if lengths.iter().any(|l| l != first) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                let length = parse_length(first)?;
                AnswerBody::Length(reader.take(length))
            } else if status == 204 || status == 304 {
                AnswerBody::Length(reader.take(0))
            } else {
                AnswerBody::UntilClose(reader)
            };
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
    }

    /// The value of the header `name` (case-insensitive), the last one given.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, at most [`MAX_MESSAGE_BYTES`] of it (an error's message).
    pub(crate) fn error_body(&mut self) -> String {
        let mut out = Vec::new();
        let _ = (&mut *self).take(MAX_MESSAGE_BYTES).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The next line of a JSON-lines body, at most [`MAX_MESSAGE_BYTES`]; `None` at
    /// the end.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.read(&mut byte)? {
                0 if line.is_empty() => return Ok(None),
                0 => return Ok(Some(line)),
                _ if byte[0] == b'\n' => return Ok(Some(line)),
                _ if line.len() as u64 >= MAX_MESSAGE_BYTES => {
                    return Err(bad("a message line longer than 64 KiB"))
                }
                _ => line.push(byte[0]),
            }
        }
    }
}

impl Read for Answer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.body {
            AnswerBody::Length(r) => {
                let want = r.limit();
                let n = r.read(buf)?;
                if n == 0 && want > 0 && !buf.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection before the end of its answer",
                    ));
                }
                Ok(n)
            }
            AnswerBody::Chunked(r) => r.read(buf),
            AnswerBody::UntilClose(r) => r.read(buf),
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a valid HTTP answer: {what}"),
    )
}

fn parse_length(text: &str) -> io::Result<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("a bad Content-Length"));
    }
    text.parse().map_err(|_| bad("a bad Content-Length"))
}

/// Read one line ending in `\n` (a `\r` before it dropped), counting against `budget`.
fn read_line(reader: &mut impl BufRead, budget: &mut usize, what: &str) -> io::Result<String> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the daemon closed the connection inside {what}"),
            ));
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if take > *budget {
            return Err(bad(&format!("{what} is too long")));
        }
        *budget -= take;
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return String::from_utf8(line).map_err(|_| bad(&format!("{what} is not UTF-8")));
        }
    }
}

/// The status and headers of an answer.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut budget = MAX_HEADER_BYTES;
    let status_line = read_line(reader, &mut budget, "the status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("a bad status line"));
    }
    let status: u16 = code.parse().map_err(|_| bad("a bad status line"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget, "the headers")?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("more than 100 headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("a header line without a colon"));
        };
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(bad("a bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
}

/// A `Transfer-Encoding: chunked` body.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk; `None` before a chunk-size line.
    left: Option<u64>,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: None,
            done: false,
        }
    }

    fn next_size(&mut self) -> io::Result<u64> {
        let mut budget = MAX_CHUNK_LINE;
        let line = read_line(&mut self.inner, &mut budget, "a chunk size")?;
        let hex = line.split(';').next().unwrap_or("").trim();
        if hex.is_empty() || hex.len() > 15 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("a bad chunk size"));
        }
        u64::from_str_radix(hex, 16).map_err(|_| bad("a bad chunk size"))
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let left = match self.left {
            Some(n) if n > 0 => n,
            _ => {
                let size = self.next_size()?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    let mut budget = MAX_CHUNK_LINE;
                    while !read_line(&mut self.inner, &mut budget, "the trailers")?.is_empty() {}
                    self.done = true;
                    return Ok(0);
                }
                size
            }
        };
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection inside a chunk",
            ));
        }
        let rest = left - n as u64;
        if rest == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(bad("a chunk not followed by CRLF"));
            }
            self.left = None;
        } else {
            self.left = Some(rest);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A server on a Unix socket in a temp dir answering one connection with `answer`
    /// (after reading the request head); returns the address and what it received.
    fn serve(answer: Vec<u8>) -> (tempfile::TempDir, Address, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                got.push(byte[0]);
            }
            let _ = conn.write_all(&answer);
            got
        });
        (dir, Address::Unix(path), thread)
    }

    fn get(answer: &[u8]) -> (io::Result<Vec<u8>>, Result<u16>, Vec<u8>) {
        let (_dir, address, server) = serve(answer.to_vec());
        let engine = Engine {
            address,
            version: "1.41".into(),
        };
        let mut status = Err(Error::Interrupted);
        let body = engine
            .request("GET", "/images/x/get", SHORT_TIMEOUT)
            .and_then(Request::finish_request)
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|mut answer| {
                status = Ok(answer.status);
                let mut out = Vec::new();
                answer.read_to_end(&mut out).map(|_| out)
            });
        (body, status, server.join().unwrap())
    }

    #[test]
    fn chunked_bodies_are_joined_and_the_path_is_versioned() {
        let (body, status, request) = get(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n",
        );
        assert_eq!(body.unwrap(), b"hello world");
        assert_eq!(status.unwrap(), 200);
        let request = String::from_utf8(request).unwrap();
        assert!(
            request.starts_with("GET /v1.41/images/x/get HTTP/1.1\r\n"),
            "{request}"
        );
    }

    #[test]
    fn content_length_bodies_end_there_and_a_short_one_is_an_error() {
        let (body, _, _) = get(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef");
        assert_eq!(body.unwrap(), b"abc");
        let (body, _, _) = get(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        assert!(body
            .unwrap_err()
            .to_string()
            .contains("closed the connection"));
        let (body, _, _) =
            get(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
        assert!(body.unwrap_err().to_string().contains("conflicting"));
        // No length and not chunked: up to the close.
        let (body, _, _) = get(b"HTTP/1.0 200 OK\r\n\r\nuntil close");
        assert_eq!(body.unwrap(), b"until close");
        // An interim answer is skipped.
        let (body, status, _) = get(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!((body.unwrap(), status.unwrap()), (b"ok".to_vec(), 201));
    }

    #[test]
    fn bad_chunks_and_heads_are_errors_not_panics() {
        for (answer, expected) in [
            (
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
                "not followed by CRLF",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
                "inside a chunk",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                "inside a chunk size",
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "bad status line"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status line"),
            (
                b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "without a colon",
            ),
            (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header name"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "bad Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "bad Content-Length",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "inside the headers"),
        ] {
            let (body, status, _) = get(answer);
            let message = match (body, status) {
                (Err(e), _) => e.to_string(),
                (Ok(_), Err(e)) => e.to_string(),
                (Ok(b), Ok(s)) => panic!("{answer:?} read as {s} {b:?}"),
            };
            assert!(message.contains(expected), "{answer:?}: {message}");
        }
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut huge = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        huge.extend(vec![b'a'; MAX_HEADER_BYTES]);
        huge.extend(b"\r\n\r\n");
        let (body, _, _) = get(&huge);
        assert!(body.unwrap_err().to_string().contains("too long"));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        let (body, _, _) = get(&many);
        assert!(body
            .unwrap_err()
            .to_string()
            .contains("more than 100 headers"));
        // A chunk-size line without an end is cut off too.
        let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1".to_vec();
        endless.extend(vec![b'0'; 2 * MAX_CHUNK_LINE]);
        let (body, _, _) = get(&endless);
        assert!(body.unwrap_err().to_string().contains("too long"));
    }

    #[test]
    fn chunked_request_bodies_are_framed_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(b"0\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                got.push(byte[0]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            got
        });
        let engine = Engine {
            address: Address::Unix(path),
            version: "1.40".into(),
        };
        let mut request = engine
            .request_with_body(
                "POST",
                "/images/load",
                Some("application/x-tar"),
                SHORT_TIMEOUT,
            )
            .unwrap();
        request.write_all(b"abc").unwrap();
        request.write_all(b"").unwrap();
        request.write_all(&[b'x'; 20]).unwrap();
        let answer = request.finish_request().unwrap();
        assert_eq!(answer.status, 200);
        let got = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            got.starts_with("POST /v1.40/images/load HTTP/1.1\r\n"),
            "{got}"
        );
        assert!(got.contains("\r\nTransfer-Encoding: chunked\r\n"), "{got}");
        assert!(
            got.ends_with(&format!(
                "\r\n\r\n3\r\nabc\r\n14\r\n{}\r\n0\r\n\r\n",
                "x".repeat(20)
            )),
            "{got}"
        );
    }

    #[test]
    fn versions_and_addresses_parse_strictly() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version(" 1.24 "), Some((1, 24)));
        for bad in ["", "1", "1.x", "v1.41", "1.41.2", "1234567.1"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(
            Address::parse("unix:///run/docker.sock").unwrap(),
            Address::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:2375").unwrap(),
            Address::Tcp("127.0.0.1:2375".into())
        );
        assert!(Address::parse("tcp://127.0.0.1").unwrap_err().is_usage());
        assert!(Address::parse("tcp://h:99999").unwrap_err().is_usage());
        assert!(Address::parse("unix://").unwrap_err().is_usage());
        assert!(matches!(
            Address::parse("ssh://me@host"),
            Err(Error::Unsupported(_))
        ));
        assert!(Address::parse("/var/run/docker.sock")
            .unwrap_err()
            .is_usage());
    }

    #[test]
    fn the_lower_api_version_is_used() {
        let (_dir, address, server) =
            serve(b"HTTP/1.1 200 OK\r\nApi-Version: 1.40\r\nContent-Length: 2\r\n\r\nOK".to_vec());
        let engine = Engine::at(address).unwrap();
        assert_eq!(engine.version, "1.40");
        assert!(String::from_utf8(server.join().unwrap())
            .unwrap()
            .starts_with("GET /_ping HTTP/1.1\r\n"));
        let (_dir, address, _server) =
            serve(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\n\r\nOK".to_vec());
        assert_eq!(Engine::at(address).unwrap().version, "1.41");
    }
}
