//! Writing big output files fast: the kernel starts flushing each stretch as soon as it
//! is written (so the final fsync waits for the tail only, as `cp` then `sync` cannot
//! do), and a tar output is written on a thread of its own while the caller reads and
//! hashes the next bytes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::model::digest::Hasher;

/// How much is written before the kernel is asked to start flushing it.
pub(crate) const WRITEBACK_STRETCH: u64 = 16 << 20;

/// Ask the kernel to start writing `len` bytes of `file` from `offset` to disk, without
/// waiting (`POSIX_FADV_DONTNEED` starts writeback of dirty pages; pages still being
/// written stay cached). Only a hint: an error changes nothing.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
}

/// A file written front to back whose every [`WRITEBACK_STRETCH`] is handed to the
/// kernel's writeback as soon as it is complete.
pub(crate) struct WritebackFile {
    file: File,
    written: u64,
    flushed: u64,
}

impl WritebackFile {
    pub(crate) fn new(file: File) -> WritebackFile {
        WritebackFile {
            file,
            written: 0,
            flushed: 0,
        }
    }

    fn note_written(&mut self, n: usize) {
        self.written += n as u64;
        if self.written - self.flushed >= WRITEBACK_STRETCH {
            start_writeback(&self.file, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
    }

    pub(crate) fn into_inner(self) -> File {
        self.file
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.note_written(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size of the buffers handed to the writing thread.
const CHUNK: usize = 1 << 20;
/// Buffers in flight between the caller and the writing thread: memory stays at about
/// `(IN_FLIGHT + 2) * CHUNK` whatever the output size.
const IN_FLIGHT: usize = 4;

enum Work {
    /// Append the first `.1` bytes of the buffer.
    Append(Vec<u8>, usize),
    /// Overwrite bytes already appended, at an offset.
    Patch(u64, Vec<u8>),
}

/// A file written sequentially by a thread of its own: the caller fills buffers (reading
/// and hashing straight into them), the thread writes them, so reading, hashing and
/// writing overlap. Bytes already written can be patched (a tar header whose size or
/// name was not known ahead).
pub(crate) struct PipelinedFile {
    to_writer: Option<SyncSender<Work>>,
    returned: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<io::Result<File>>>,
    buf: Vec<u8>,
    filled: usize,
    /// Bytes handed to the thread: the file offset of `buf[0]`.
    sent: u64,
}

impl PipelinedFile {
    pub(crate) fn new(file: File) -> io::Result<PipelinedFile> {
        let (to_writer, work) = mpsc::sync_channel::<Work>(IN_FLIGHT);
        let (give_back, returned) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("dockhand-writer".into())
            .spawn(move || {
                let mut out = WritebackFile::new(file);
                for item in work {
                    match item {
                        Work::Append(buf, len) => {
                            out.write_all(&buf[..len])?;
                            // The caller may be gone: then the buffer is simply freed.
                            let _ = give_back.send(buf);
                        }
                        Work::Patch(offset, bytes) => out.file.write_all_at(&bytes, offset)?,
                    }
                }
                Ok(out.into_inner())
            })?;
        Ok(PipelinedFile {
            to_writer: Some(to_writer),
            returned,
            writer: Some(writer),
            buf: vec![0; CHUNK],
            filled: 0,
            sent: 0,
        })
    }

    /// The offset the next byte goes to.
    pub(crate) fn position(&self) -> u64 {
        self.sent + self.filled as u64
    }

    /// Hand `work` to the thread; when the thread has stopped, its error.
    fn send(&mut self, work: Work) -> io::Result<()> {
        if let Some(sender) = &self.to_writer {
            if sender.send(work).is_ok() {
                return Ok(());
            }
        }
        self.to_writer = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            _ => Err(io::Error::other("the writing thread stopped")),
        }
    }

    /// Send the current buffer and take an empty one.
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self.returned.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let full = std::mem::replace(&mut self.buf, next);
        let len = std::mem::take(&mut self.filled);
        self.sent += len as u64;
        self.send(Work::Append(full, len))
    }

    /// Append everything `data` yields, read straight into the thread's buffers and fed
    /// to `hasher` on the way; returns the byte count. Errors name `what` (reading) or
    /// `output` (writing).
    pub(crate) fn append_from(
        &mut self,
        data: &mut dyn Read,
        mut hasher: Option<&mut Hasher>,
        what: &str,
        output: &str,
    ) -> Result<u64> {
        let mut total = 0u64;
        loop {
            if self.filled == CHUNK {
                self.send_buffer()
                    .map_err(|e| Error::io(format!("writing {output}"), e))?;
            }
            let n = match data.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("reading {what}"), e)),
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&self.buf[self.filled..self.filled + n]);
            }
            self.filled += n;
            total += n as u64;
        }
    }

    /// Overwrite `bytes` at `offset`, which must already have been appended.
    pub(crate) fn patch(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        assert!(
            offset + bytes.len() as u64 <= self.position(),
            "patch past the end"
        );
        if offset >= self.sent {
            let at = (offset - self.sent) as usize;
            self.buf[at..at + bytes.len()].copy_from_slice(bytes);
            return Ok(());
        }
        // Whatever part is still in the buffer goes there, the rest to the thread.
        let split = ((self.sent - offset) as usize).min(bytes.len());
        let (on_disk, in_buffer) = bytes.split_at(split);
        self.buf[..in_buffer.len()].copy_from_slice(in_buffer);
        self.send(Work::Patch(offset, on_disk.to_vec()))
    }

    /// Write what is left, wait for the thread, and return the file.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        self.send_buffer()?;
        self.to_writer = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
            None => Err(io::Error::other("the writing thread stopped")),
        }
    }
}

impl Write for PipelinedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.filled == CHUNK {
            self.send_buffer()?;
        }
        let n = buf.len().min(CHUNK - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipelinedFile {
    fn drop(&mut self) {
        // Unfinished (a failed output): stop the thread and wait, so nothing writes to
        // the file once its owner has removed it.
        self.to_writer = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    #[test]
    fn appends_writes_and_patches_land_where_they_belong() {
        let file = tempfile::tempfile().unwrap();
        let mut copy = file.try_clone().unwrap();
        let mut out = PipelinedFile::new(file).unwrap();
        let mut expected = Vec::new();
        out.write_all(b"head").unwrap();
        expected.extend_from_slice(b"head");
        let big: Vec<u8> = (0..(3 * CHUNK + 123)).map(|i| (i * 7) as u8).collect();
        let mut hasher = Hasher::new();
        let n = out
            .append_from(&mut &big[..], Some(&mut hasher), "in", "out")
            .unwrap();
        assert_eq!(n, big.len() as u64);
        assert_eq!(hasher.len(), big.len() as u64);
        expected.extend_from_slice(&big);
        // One patch long written, one across the buffer boundary, one in the buffer.
        out.patch(0, b"HEAD").unwrap();
        expected[..4].copy_from_slice(b"HEAD");
        let edge = out.sent - 2;
        out.patch(edge, b"wxyz").unwrap();
        expected[edge as usize..edge as usize + 4].copy_from_slice(b"wxyz");
        let end = out.position() - 3;
        out.patch(end, b"END").unwrap();
        expected[end as usize..].copy_from_slice(b"END");
        assert_eq!(out.position(), expected.len() as u64);
        out.finish().unwrap();
        let mut got = Vec::new();
        copy.seek(SeekFrom::Start(0)).unwrap();
        copy.read_to_end(&mut got).unwrap();
        assert!(got == expected, "file content differs");
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        // A file opened read-only refuses writes: the thread's error comes back.
        let path = tempfile::NamedTempFile::new().unwrap();
        let file = File::open(path.path()).unwrap();
        let mut out = PipelinedFile::new(file).unwrap();
        let data = vec![1u8; 8 * CHUNK];
        let err = out.append_from(&mut &data[..], None, "in", "out");
        let finished = out.finish();
        assert!(err.is_err() || finished.is_err());
    }
}
