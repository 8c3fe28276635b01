//! Images a test puts in the Docker daemon, removed when the test ends.

use std::process::{Command, Stdio};

/// `docker rmi -f` of these references (or IDs) when dropped, also when the test
/// fails; containers are removed with `docker rm -f` first.
#[derive(Default)]
pub struct DockerImages {
    /// Images to remove.
    pub images: Vec<String>,
    /// Containers to remove.
    pub containers: Vec<String>,
}

impl Drop for DockerImages {
    fn drop(&mut self) {
        for (what, names) in [("rm", &self.containers), ("rmi", &self.images)] {
            for name in names {
                let _ = Command::new("docker")
                    .args([what, "-f", name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
