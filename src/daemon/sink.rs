//! Loading into a daemon: a docker-archive (legacy layout, as `docker save` writes)
//! streamed as the chunked body of `POST /images/load`, written as the images are.
//! Only a commit sends the body's terminating chunk; a sink dropped before that cuts
//! the connection, and the daemon, finding the body incomplete, loads nothing.

use super::engine::{Body, Engine, Pending, MAX_MESSAGE_BYTES, STREAM_TIMEOUT};
use super::DaemonProblem;
use crate::container::TarStreamWriter;
use crate::error::{Error, Result};
use crate::formats::{Format, ImageSink, WriteOptions};
use crate::model::image::Image;
use crate::progress::Progress;

/// Most lines of the daemon's load messages kept.
const MAX_RESULT_LINES: usize = 1000;

/// A load request under way.
pub(crate) struct DaemonSink {
    engine: Engine,
    /// The `NAME:TAG` loaded, for messages.
    name: String,
    archive: Option<TarStreamWriter<Body>>,
    answer: Option<Pending>,
}

impl DaemonSink {
    /// Connect to the daemon and start a load request; the archive follows.
    pub(crate) fn start(name: String) -> Result<DaemonSink> {
        let engine = Engine::connect()?;
        let request = engine.request_with_body(
            "POST",
            "/images/load?quiet=1",
            Some("application/x-tar"),
            STREAM_TIMEOUT,
        )?;
        let (body, answer) = request.split();
        let what = format!("the load request to {}", engine.address().shown());
        Ok(DaemonSink {
            engine,
            name,
            archive: Some(TarStreamWriter::new(body, &what)),
            answer: Some(answer),
        })
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
        loop {
            let line = answer.next_line().map_err(|e| {
                self.engine
                    .error(image, DaemonProblem::Io(format!("reading its answer: {e}")))
            })?;
            let Some(line) = line else { break };
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
                        lines.push(part.chars().take(MAX_MESSAGE_BYTES as usize).collect());
                    }
                }
            }
        }
        Ok(lines)
    }
}

impl ImageSink for DaemonSink {
    fn put_images(&mut self, images: &[Image], progress: &dyn Progress) -> Result<Vec<String>> {
        let archive = self.archive.as_mut().expect("not finished");
        let write = Format::DOCKER_ARCHIVE.ops().write;
        write(images, archive, &WriteOptions::default(), progress)
            .map_err(|e| self.daemon_reason(e))
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.finish().map(drop)
    }
}

impl Drop for DaemonSink {
    fn drop(&mut self) {
        if let (Some(_), Some(answer)) = (&self.archive, &self.answer) {
            // Not committed: the body ends without its terminating chunk.
            let _ = answer.shutdown(std::net::Shutdown::Both);
        }
    }
}
