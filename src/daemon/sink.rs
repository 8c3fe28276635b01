//! Loading into a daemon: a docker-archive (legacy layout, as `docker save` writes)
//! streamed as the chunked body of `POST /images/load`, written as the images are.
//! Only a commit sends the body's terminating chunk; a sink dropped before that cuts
//! the connection, and the daemon, finding the body incomplete, loads nothing.

use super::engine::{Body, Engine, Pending, STREAM_TIMEOUT};
use super::DaemonProblem;
use std::io::Read;

use crate::container::TarStreamWriter;
use crate::error::{Error, Result};
use crate::formats::blobs::LayoutWriter;
use crate::formats::DockerWriter;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::model::reference::Reference;
use crate::sink::{BlobInfo, CommitReport, ImageDestination, ManifestInfo};
use crate::transport::DockerLayout;

/// Most lines of the daemon's load messages kept.
const MAX_RESULT_LINES: usize = 1000;
/// Most bytes of a load answer read: a daemon that never stops talking is an error,
/// not a hang.
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// A load request under way: a docker-archive written into its body.
pub(crate) struct DaemonDestination {
    engine: Engine,
    /// The `NAME:TAG` loaded, for messages.
    name: String,
    archive: Option<TarStreamWriter<Body>>,
    /// The legacy docker-archive layout, naming the image `name`, as skopeo does: under
    /// `NAME:TAG` only, unless it already carries that name (the pipeline named it so,
    /// with any other names it was given).
    layout: DockerWriter,
    answer: Option<Pending>,
}

impl DaemonDestination {
    /// Connect to the daemon and start a load request; the archive follows.
    pub(crate) fn start(name: String) -> Result<DaemonDestination> {
        DaemonDestination::start_at(Engine::connect()?, name)
    }

    /// [`DaemonDestination::start`] with the daemon `engine`.
    fn start_at(engine: Engine, name: String) -> Result<DaemonDestination> {
        let reference = Reference::parse(&name).map_err(Error::Usage)?;
        let request = engine.request_with_body(
            "POST",
            "/images/load?quiet=1",
            Some("application/x-tar"),
            STREAM_TIMEOUT,
        )?;
        let (body, answer) = request.split();
        let what = format!("the load request to {}", engine.address().shown());
        Ok(DaemonDestination {
            engine,
            name,
            archive: Some(TarStreamWriter::new(body, &what)),
            layout: DockerWriter::new(DockerLayout::Legacy).naming(reference),
            answer: Some(answer),
        })
    }

    /// Do `step` with the archive and its layout; a failure to write, because the
    /// daemon answered and closed, is the daemon's reason.
    fn writing<T>(
        &mut self,
        step: impl FnOnce(&mut DockerWriter, &mut TarStreamWriter<Body>) -> Result<T>,
    ) -> Result<T> {
        let archive = self.archive.as_mut().expect("not finished");
        step(&mut self.layout, archive).map_err(|e| self.daemon_reason(e))
    }

    /// The daemon's reason when a write to it failed because it answered and closed.
    fn daemon_reason(&self, error: Error) -> Error {
        match self.answer.as_ref().and_then(Pending::after_failure) {
            Some(Error::Daemon(mut refused)) => {
                refused.image = Some(self.name.clone());
                Error::Daemon(refused)
            }
            Some(other) => other,
            None => error,
        }
    }

    /// Finish the archive and the request, then read the daemon's messages: the lines
    /// it printed (`Loaded image: NAME:TAG`), or the failure it reported, also inside
    /// an HTTP 200 answer.
    pub(crate) fn finish(mut self) -> Result<Vec<String>> {
        self.writing(|layout, archive| layout.finish(archive))?;
        let archive = self.archive.take().expect("finished once");
        let sent = archive.finish().and_then(|body| {
            body.finish()
                .map_err(|e| Error::io("sending the end of the archive", e))
        });
        if let Err(e) = sent {
            return Err(self.daemon_reason(e));
        }
        let image = Some(self.name.as_str());
        let mut answer = self.answer.take().expect("finished once").read()?;
        if answer.status != 200 {
            return Err(self.engine.refused(&mut answer, image));
        }
        let mut lines = Vec::new();
        let mut answered = 0u64;
        loop {
            let line = answer.next_line().map_err(|e| {
                self.engine
                    .error(image, DaemonProblem::Io(format!("reading its answer: {e}")))
            })?;
            let Some(line) = line else { break };
            answered += line.len() as u64 + 1;
            if answered > MAX_ANSWER_BYTES {
                return Err(self.engine.error(
                    image,
                    DaemonProblem::Protocol(format!(
                        "a load answer of more than {MAX_ANSWER_BYTES} bytes"
                    )),
                ));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let message: serde_json::Value = serde_json::from_slice(&line).map_err(|_| {
                self.engine.error(
                    image,
                    DaemonProblem::Protocol(format!(
                        "a load message that is not JSON: {}",
                        String::from_utf8_lossy(&line[..line.len().min(200)])
                    )),
                )
            })?;
            let error = message["errorDetail"]["message"]
                .as_str()
                .or_else(|| message["error"].as_str());
            if let Some(error) = error {
                return Err(self.engine.error(
                    image,
                    DaemonProblem::LoadFailed {
                        message: error.trim().to_string(),
                    },
                ));
            }
            if let Some(text) = message["stream"].as_str() {
                for part in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if lines.len() < MAX_RESULT_LINES {
                        // A line is already bounded by the answer's own line cap.
                        lines.push(part.to_string());
                    }
                }
            }
        }
        Ok(lines)
    }
}

impl ImageDestination for DaemonDestination {
    fn prepare(&mut self, images: &[Image]) -> Result<Vec<String>> {
        if images.len() != 1 {
            return Err(Error::Selection(format!(
                "{}{}: a daemon destination names one image, but {} are given",
                super::PREFIX,
                crate::text::shown(&self.name),
                images.len()
            )));
        }
        self.writing(|layout, archive| layout.prepare(archive, images))
    }
    fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>> {
        self.writing(|layout, archive| layout.try_reusing_blob(archive, blob))
    }
    fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)> {
        self.writing(|layout, archive| layout.put_blob(archive, blob, data))
    }
    fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()> {
        // Flushed, so that the daemon holds every layer written: the load then waits
        // only for manifest.json and the end of the body, which the commit sends.
        self.writing(|layout, archive| {
            layout.put_manifest(&mut *archive, manifest)?;
            archive.flush()
        })
    }
    fn put_names(&mut self, manifest: &Descriptor, image: &Image) -> Result<()> {
        self.writing(|layout, archive| layout.put_names(archive, manifest, image))
    }
    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let notes = self.finish()?;
        Ok(CommitReport {
            notes,
            ..CommitReport::default()
        })
    }
}

impl Drop for DaemonDestination {
    fn drop(&mut self) {
        if let (Some(_), Some(answer)) = (&self.archive, &self.answer) {
            // Not committed: the body ends without its terminating chunk.
            let _ = answer.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::daemon::engine::Address;
    use crate::formats::open;
    use crate::progress::NoProgress;
    use crate::sink::{ImageSink, LayerPolicy};
    use crate::transport::ReadOptions;

    /// A fake Engine: answers the ping, then reads the load request whole (up to the
    /// client's close or its terminating chunk) and answers `reply`; returns the body.
    fn fake(
        reply: &'static [u8],
    ) -> (tempfile::TempDir, Address, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            let mut body = Vec::new();
            for _ in 0..2 {
                let (mut conn, _) = listener.accept().unwrap();
                let mut got = Vec::new();
                let mut byte = [0u8; 1];
                while !got.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    got.push(byte[0]);
                }
                if got.starts_with(b"GET /_ping") {
                    conn.write_all(
                        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK",
                    )
                    .unwrap();
                    continue;
                }
                body.clear();
                while !body.ends_with(b"\r\n0\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    body.push(byte[0]);
                }
                let _ = conn.write_all(reply);
            }
            body
        });
        (dir, Address::Unix(path), thread)
    }

    /// A sink loading into the daemon at `address` as `a:1`.
    fn start(address: Address) -> ImageSink<'static> {
        let engine = Engine::at(address).unwrap();
        let destination = DaemonDestination::start_at(engine, "a:1".into()).unwrap();
        ImageSink::new(Box::new(destination), LayerPolicy::UNCOMPRESSED)
    }

    fn images() -> Vec<Image> {
        let input = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/docker-save-basic/input.tar"
        );
        open(input, &ReadOptions::default()).unwrap().images
    }

    #[test]
    fn a_sink_dropped_before_its_commit_leaves_the_body_unended() {
        let (_dir, address, server) = fake(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let mut sink = start(address);
        sink.put_images(&images(), &NoProgress).unwrap();
        drop(sink);
        let body = server.join().unwrap();
        assert!(
            body.len() > 10_000,
            "the archive was sent: {} bytes",
            body.len()
        );
        assert!(!body.ends_with(b"0\r\n\r\n"), "no terminating chunk");
    }

    #[test]
    fn a_commit_ends_the_body_and_returns_what_the_daemon_said() {
        let (_dir, address, server) = fake(
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"stream\":\"Loaded image: a:1\\n\"}\n{\"stream\":\"\\n\"}\n\n",
        );
        let mut sink = start(address);
        sink.put_images(&images(), &NoProgress).unwrap();
        assert_eq!(
            sink.commit_with_report()
                .map(|report| report.notes)
                .unwrap(),
            ["Loaded image: a:1"]
        );
        assert!(server.join().unwrap().ends_with(b"\r\n0\r\n\r\n"));
    }

    #[test]
    fn a_load_answer_that_never_ends_is_cut_off() {
        let line = b"{\"stream\":\"still loading\"}\n";
        let mut reply = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        while reply.len() as u64 <= MAX_ANSWER_BYTES + 1000 {
            reply.extend_from_slice(line);
        }
        let (_dir, address, _server) = fake(Box::leak(reply.into_boxed_slice()));
        let mut sink = start(address);
        sink.put_images(&images(), &NoProgress).unwrap();
        let err = sink
            .commit_with_report()
            .map(|report| report.notes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a load answer of more than 16777216 bytes"),
            "{err}"
        );
    }

    #[test]
    fn load_answers_that_are_failures() {
        for (reply, expected) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{\"error\":\"disk full\\u001b[0m\"}\n"[..], "failed to load a:1: disk full\\x1b[0m"),
            (b"HTTP/1.1 500 Oops\r\nContent-Length: 21\r\n\r\n{\"message\":\"bad tar\"}", "refused a:1 (HTTP 500): bad tar"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json\n", "not JSON: not json"),
        ] {
            let (_dir, address, _server) = fake(reply);
            let mut sink = start(address);
            sink.put_images(&images(), &NoProgress).unwrap();
            let err = sink.commit_with_report().map(|report| report.notes).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
