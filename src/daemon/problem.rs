//! What goes wrong talking to a Docker daemon, as data: a leaf the crate's error type
//! can hold without depending on the transport.

use std::fmt;

use crate::text::shown;

/// What went wrong talking to a Docker daemon (or podman's Docker-compatible service),
/// with the data to act on: where, which image, and what the daemon said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonError {
    /// The daemon's address as `DOCKER_HOST` writes it (`unix:///var/run/docker.sock`).
    pub address: String,
    /// The image asked for or loaded, when there is one.
    pub image: Option<String>,
    /// What happened.
    pub problem: DaemonProblem,
}

/// The ways a daemon request fails.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonProblem {
    /// Nothing listens at the address (no socket there, or the connection is refused).
    NotRunning,
    /// The socket exists but this user may not connect to it.
    PermissionDenied,
    /// The daemon has no such image; its message.
    NoSuchImage {
        /// What the daemon said.
        message: String,
    },
    /// The daemon answered a request with an error status.
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the daemon said.
        message: String,
    },
    /// A load was accepted (HTTP 200) but its message stream reports a failure.
    LoadFailed {
        /// The daemon's error message.
        message: String,
    },
    /// The daemon answered something the Engine API does not allow.
    Protocol(String),
    /// The connection failed midway (a timeout, a reset).
    Io(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = &self.address;
        let image = self.image.as_deref().map(shown);
        match &self.problem {
            DaemonProblem::NotRunning => write!(
                f,
                "no Docker daemon answers at {address}: start it, or set DOCKER_HOST to the address of one that runs"
            ),
            DaemonProblem::PermissionDenied => write!(
                f,
                "permission denied connecting to the Docker daemon at {address}: run as a user allowed to use that socket (root, or a member of its group), or set DOCKER_HOST to one you may use"
            ),
            DaemonProblem::NoSuchImage { message } => write!(
                f,
                "the Docker daemon at {address} has no image {} ({})",
                image.as_deref().unwrap_or("?"),
                shown(message)
            ),
            DaemonProblem::Refused { status, message } => {
                write!(f, "the Docker daemon at {address} refused")?;
                if let Some(image) = &image {
                    write!(f, " {image}")?;
                }
                write!(f, " (HTTP {status}): {}", shown(message))
            }
            DaemonProblem::LoadFailed { message } => write!(
                f,
                "the Docker daemon at {address} failed to load {}: {}",
                image.as_deref().unwrap_or("the image"),
                shown(message)
            ),
            DaemonProblem::Protocol(what) => write!(
                f,
                "the Docker daemon at {address} answered something unexpected: {}",
                shown(what)
            ),
            DaemonProblem::Io(what) => {
                write!(f, "talking to the Docker daemon at {address}: {}", shown(what))
            }
        }
    }
}

impl std::error::Error for DaemonError {}
