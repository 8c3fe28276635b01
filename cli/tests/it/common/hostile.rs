//! A scripted hostile registry on 127.0.0.1: servers that answer each request from a
//! closure (redirects to a third host, foreign upload locations, lying digests,
//! stalled or dripping bodies) and log every request with its `Authorization`
//! header, so that a test can say exactly where credentials went.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::build::{tar_of, Noise};
use super::sha256;

/// A request as a server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The label of the server that received it.
    pub server: String,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// How a body is sent.
pub enum Body {
    /// All at once.
    Bytes(Vec<u8>),
    /// These bytes, then nothing (the connection stays open until the server stops).
    Stall(Vec<u8>),
    /// Pieces of this many bytes, with a pause after each.
    Paced(Vec<u8>, usize, Duration),
    /// These bytes, then the connection is closed (with `Content-Length` promising
    /// `promised`).
    Cut(Vec<u8>, u64),
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Answer {
    pub fn new(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }
    pub fn bytes(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            body: Body::Bytes(body.into()),
            ..Answer::new(status)
        }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn body(mut self, body: Body) -> Answer {
        self.body = body;
        self
    }
}

/// Every request every server of one test saw, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Request>>>);

impl Log {
    pub fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
    /// The requests `server` received.
    pub fn to(&self, server: &str) -> Vec<Request> {
        self.all()
            .into_iter()
            .filter(|r| r.server == server)
            .collect()
    }
    /// Requests that reached `server` carrying an `Authorization` header.
    pub fn authorized_to(&self, server: &str) -> Vec<Request> {
        self.to(server)
            .into_iter()
            .filter(|r| r.header("authorization").is_some())
            .collect()
    }
    /// Does any request anywhere but `allowed` carry `secret` in any header or body
    /// (plainly or base64-encoded as Basic credentials carry it)?
    pub fn secret_reached_other_than(&self, secret: &str, allowed: &[&str]) -> Vec<Request> {
        self.all()
            .into_iter()
            .filter(|r| !allowed.contains(&r.server.as_str()))
            .filter(|r| {
                let text = format!(
                    "{} {:?} {}",
                    r.target,
                    r.headers,
                    String::from_utf8_lossy(&r.body)
                );
                text.contains(secret) || basic_values(r).iter().any(|v| v.contains(secret))
            })
            .collect()
    }
    fn push(&self, r: Request) {
        self.0.lock().unwrap().push(r);
    }
}

/// The decoded user:password of each Basic `Authorization` a request carries.
fn basic_values(r: &Request) -> Vec<String> {
    use base64::Engine;
    r.headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .filter_map(|(_, v)| v.strip_prefix("Basic "))
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// A scripted server; stopped (its stalled bodies released) on drop.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What answers a server's requests.
pub type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

impl Server {
    /// Serve on a free port of 127.0.0.1, as `label` in `log`.
    pub fn start(
        label: &str,
        log: &Log,
        answer: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Server::serve(listener, label, log, Arc::new(answer))
    }

    /// Serve on `listener`.
    pub fn serve(listener: TcpListener, label: &str, log: &Log, answer: Arc<Handler>) -> Server {
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (label, log, flag) = (label.to_string(), log.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (label, log, answer, flag) = (
                    label.clone(),
                    log.clone(),
                    Arc::clone(&answer),
                    Arc::clone(&flag),
                );
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &label, &log, &*answer, &flag);
                });
            }
        });
        Server { addr, stop }
    }
}

fn serve_connection(
    stream: TcpStream,
    label: &str,
    log: &Log,
    answer: &Handler,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let request = Request {
            server: label.to_string(),
            method,
            target,
            headers,
            body,
        };
        log.push(request.clone());
        let reply = answer(&request);
        let length = match &reply.body {
            Body::Bytes(b) | Body::Stall(b) | Body::Paced(b, _, _) => b.len() as u64,
            Body::Cut(_, promised) => *promised,
        };
        let length = match &reply.body {
            Body::Stall(_) => length.max(1 << 30),
            _ => length,
        };
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {length}\r\n",
            reply.status
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        if request.method == "HEAD" {
            continue;
        }
        match reply.body {
            Body::Bytes(b) => writer.write_all(&b)?,
            Body::Cut(b, _) => {
                writer.write_all(&b)?;
                writer.flush()?;
                return Ok(());
            }
            Body::Stall(b) => {
                writer.write_all(&b)?;
                writer.flush()?;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                return Ok(());
            }
            Body::Paced(b, piece, pause) => {
                for part in b.chunks(piece.max(1)) {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    writer.write_all(part)?;
                    writer.flush()?;
                    std::thread::sleep(pause);
                }
            }
        }
        writer.flush()?;
    }
}

/// A one-layer Docker v2 image to serve: its layer, config and manifest bytes.
#[derive(Clone)]
pub struct Image {
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

impl Image {
    /// An image whose layer holds `size` bytes of noise from `seed`.
    pub fn new(size: usize, seed: u64) -> Image {
        let layer = tar_of(&[super::build::file("noise.bin", Noise(seed).bytes(size))]);
        let layer_digest = sha256(&layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
        )
        .into_bytes();
        let config_digest = sha256(&config);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        )
        .into_bytes();
        let manifest_digest = sha256(&manifest);
        Image {
            layer,
            layer_digest,
            config,
            config_digest,
            manifest,
            manifest_digest,
        }
    }

    /// The answer a plain registry gives for `request` in repository `repo` (the
    /// image under any tag and its digest, `Range` honoured on the layer), or `None`
    /// for a request this image does not answer.
    pub fn serve(&self, repo: &str, request: &Request) -> Option<Answer> {
        let path = request.path();
        if path == "/v2/" {
            return Some(Answer::bytes(200, "{}"));
        }
        let rest = path.strip_prefix(&format!("/v2/{repo}/"))?;
        if rest.starts_with("manifests/") {
            return Some(
                Answer::bytes(200, self.manifest.clone())
                    .header("Content-Type", DOCKER_MANIFEST)
                    .header("Docker-Content-Digest", self.manifest_digest.clone()),
            );
        }
        let digest = rest.strip_prefix("blobs/")?;
        let bytes = if digest == self.config_digest {
            &self.config
        } else if digest == self.layer_digest {
            &self.layer
        } else {
            return Some(Answer::new(404));
        };
        let start = request
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse::<usize>().ok());
        Some(match start {
            Some(start) if start < bytes.len() => Answer::bytes(206, bytes[start..].to_vec())
                .header(
                    "Content-Range",
                    format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
                ),
            _ => Answer::bytes(200, bytes.clone()),
        })
    }
}

/// `Basic base64(user:pass)`.
pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}
