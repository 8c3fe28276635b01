//! Writing big output files fast: around the page cache where the filesystem allows
//! (else with each stretch handed to the kernel's writeback as soon as it is written,
//! so the final fsync waits for the tail only, as `cp` then `sync` cannot do), and on
//! a thread of the file's own while the caller reads and hashes the next bytes.

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

/// Alignment of direct I/O: of the buffer's address, the file offset and the length.
/// A page, which every device's logical block size divides.
const DIRECT_ALIGN: usize = 4096;
/// Bytes a [`DirectFile`] gathers and writes to disk at once.
const DIRECT_CHUNK: usize = 2 << 20;

/// A file written front to back, around the page cache where the filesystem allows
/// (`O_DIRECT`): whole aligned chunks go from one reused buffer straight to the disk,
/// so the kernel neither copies them into cache pages nor flushes them later. That
/// copy is most of a big output's cost (on a virtual machine's disk, writing 1 GiB
/// through the cache costs two to four CPU-seconds; around it, a tenth of that). The
/// unaligned tail, and patches of bytes already written, go through the cache as
/// usual. A filesystem that refuses direct I/O (tmpfs on older kernels) gets the
/// cached writes, each [`WRITEBACK_STRETCH`] handed to the kernel's writeback as soon
/// as it is complete, so the final flush waits for the tail only.
struct DirectFile {
    file: File,
    /// The chunk being gathered: the aligned [`DIRECT_CHUNK`] bytes of it.
    raw: Vec<u8>,
    filled: usize,
    /// The file offset of the chunk's first byte: everything before it is written.
    offset: u64,
    direct: bool,
    /// Up to where cached writes were handed to writeback.
    flushed: u64,
}

impl DirectFile {
    fn new(file: File) -> DirectFile {
        let direct = set_direct(&file, true).is_ok();
        DirectFile {
            file,
            raw: vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN],
            filled: 0,
            offset: 0,
            direct,
            flushed: 0,
        }
    }

    fn chunk(&mut self) -> &mut [u8] {
        aligned_mut(&mut self.raw, DIRECT_CHUNK)
    }

    /// Write the chunk's first `len` bytes (all of it, or its aligned part at the end)
    /// and keep the rest for later.
    fn write_chunk(&mut self, len: usize) -> io::Result<()> {
        let offset = self.offset;
        let bytes = &aligned(&self.raw, DIRECT_CHUNK)[..len];
        if self.direct {
            write_direct(&self.file, &mut self.direct, bytes, offset)?;
        } else {
            self.file.write_all_at(bytes, offset)?;
            let end = offset + len as u64;
            if end - self.flushed >= WRITEBACK_STRETCH {
                start_writeback(&self.file, self.flushed, end - self.flushed);
                self.flushed = end;
            }
        }
        let filled = self.filled;
        self.chunk().copy_within(len..filled, 0);
        self.filled -= len;
        self.offset += len as u64;
        Ok(())
    }

    /// Append `bytes`: straight to the disk, without a copy, when nothing is gathered
    /// and they are whole aligned blocks in aligned memory; else as [`Write`] does.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let aligned = bytes.as_ptr().align_offset(DIRECT_ALIGN) == 0
            && bytes.len() % DIRECT_ALIGN == 0
            && self.offset % DIRECT_ALIGN as u64 == 0;
        if !(self.direct && self.filled == 0 && aligned) {
            return self.write_all(bytes);
        }
        write_direct(&self.file, &mut self.direct, bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Overwrite `bytes` at `offset`, which must already have been appended.
    fn patch(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let end = offset + bytes.len() as u64;
        assert!(
            end <= self.offset + self.filled as u64,
            "patch past the end"
        );
        // The part still in the chunk goes there; the part on disk, through the cache.
        let split = (self.offset.saturating_sub(offset) as usize).min(bytes.len());
        let (on_disk, in_chunk) = bytes.split_at(split);
        if !in_chunk.is_empty() {
            let at = (offset + split as u64 - self.offset) as usize;
            self.chunk()[at..at + in_chunk.len()].copy_from_slice(in_chunk);
        }
        if !on_disk.is_empty() {
            if self.direct {
                set_direct(&self.file, false)?;
            }
            self.file.write_all_at(on_disk, offset)?;
            if self.direct {
                set_direct(&self.file, true)?;
            }
        }
        Ok(())
    }

    /// Write what is left and return the file (to be flushed to disk with the rest of
    /// the output).
    fn finish(mut self) -> io::Result<File> {
        self.write_rest()?;
        Ok(self.file)
    }

    /// Write the aligned part of the chunk directly and the tail through the cache;
    /// what is appended afterwards goes through the cache too.
    fn write_rest(&mut self) -> io::Result<()> {
        if self.direct {
            self.write_chunk(self.filled / DIRECT_ALIGN * DIRECT_ALIGN)?;
            if self.direct {
                self.direct = false;
                set_direct(&self.file, false)?;
            }
        }
        self.write_chunk(self.filled)
    }
}

impl Write for DirectFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.filled == DIRECT_CHUNK {
            self.write_chunk(DIRECT_CHUNK)?;
        }
        let n = buf.len().min(DIRECT_CHUNK - self.filled);
        let filled = self.filled;
        self.chunk()[filled..filled + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        Ok(n)
    }

    /// Writes everything appended so far (what is appended later goes through the
    /// cache).
    fn flush(&mut self) -> io::Result<()> {
        self.write_rest()
    }
}

/// Turn direct I/O on or off for `file`.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    Ok(rustix::fs::fcntl_setfl(file, flags)?)
}

/// Write aligned `bytes` at `offset` around the page cache. A filesystem that accepts
/// the flag but refuses the I/O (`EINVAL`) gets cached writes from then on, these bytes
/// included, and `direct` is cleared.
fn write_direct(file: &File, direct: &mut bool, bytes: &[u8], offset: u64) -> io::Result<()> {
    match write_all_at(file, bytes, offset) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            *direct = false;
            set_direct(file, false)?;
            file.write_all_at(bytes, offset)
        }
        other => other,
    }
}

/// `write_all_at` for direct I/O: a short write leaves an unaligned rest, which the
/// next call refuses with `EINVAL`, and the caller then writes it through the cache.
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write_at(bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

/// The page-aligned `len` bytes of a buffer of `len + DIRECT_ALIGN`: what can go to
/// the disk as it is.
fn aligned(buf: &[u8], len: usize) -> &[u8] {
    let start = buf.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
    &buf[start..start + len]
}

fn aligned_mut(buf: &mut [u8], len: usize) -> &mut [u8] {
    let start = buf.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
    &mut buf[start..start + len]
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
                let mut out = DirectFile::new(file);
                for item in work {
                    match item {
                        Work::Append(buf, len) => {
                            out.append(&aligned(&buf, CHUNK)[..len])?;
                            // The caller may be gone: then the buffer is simply freed.
                            let _ = give_back.send(buf);
                        }
                        Work::Patch(offset, bytes) => out.patch(offset, &bytes)?,
                    }
                }
                out.finish()
            })?;
        Ok(PipelinedFile {
            to_writer: Some(to_writer),
            returned,
            writer: Some(writer),
            buf: vec![0; CHUNK + DIRECT_ALIGN],
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
        let next = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| vec![0; CHUNK + DIRECT_ALIGN]);
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
            let n = match data.read(&mut aligned_mut(&mut self.buf, CHUNK)[self.filled..]) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("reading {what}"), e)),
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&aligned(&self.buf, CHUNK)[self.filled..self.filled + n]);
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
            aligned_mut(&mut self.buf, CHUNK)[at..at + bytes.len()].copy_from_slice(bytes);
            return Ok(());
        }
        // Whatever part is still in the buffer goes there, the rest to the thread.
        let split = ((self.sent - offset) as usize).min(bytes.len());
        let (on_disk, in_buffer) = bytes.split_at(split);
        aligned_mut(&mut self.buf, CHUNK)[..in_buffer.len()].copy_from_slice(in_buffer);
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
        aligned_mut(&mut self.buf, CHUNK)[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
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

    /// Direct and cached, the file holds what was appended and patched: whole chunks,
    /// an unaligned tail, patches on disk, across the chunk's start and in the chunk.
    #[test]
    fn direct_files_hold_what_was_written() {
        for direct in [true, false] {
            let file = tempfile::tempfile().unwrap();
            let mut copy = file.try_clone().unwrap();
            let mut out = DirectFile::new(file);
            if !direct && out.direct {
                out.direct = false;
                set_direct(&out.file, false).unwrap();
            }
            let mut expected: Vec<u8> = (0..(2 * DIRECT_CHUNK + 5000))
                .map(|i| (i * 13 % 253) as u8)
                .collect();
            out.write_all(&expected[..777]).unwrap();
            out.write_all(&expected[777..]).unwrap();
            for (at, bytes) in [
                (10, &b"on disk"[..]),
                (2 * DIRECT_CHUNK - 3, b"across"),
                (2 * DIRECT_CHUNK + 4990, b"in chunk"),
            ] {
                out.patch(at as u64, bytes).unwrap();
                expected[at..at + bytes.len()].copy_from_slice(bytes);
            }
            out.write_all(b"after").unwrap();
            expected.extend_from_slice(b"after");
            out.finish().unwrap();
            let mut got = Vec::new();
            copy.seek(SeekFrom::Start(0)).unwrap();
            copy.read_to_end(&mut got).unwrap();
            assert!(got == expected, "direct {direct}: file content differs");
        }
    }

    /// A direct write the filesystem refuses (here: from memory that is not aligned,
    /// which a block device's filesystem refuses with EINVAL) is written through the
    /// cache instead, and direct I/O is off from then on.
    #[test]
    fn a_refused_direct_write_goes_through_the_cache() {
        let mut file = tempfile::tempfile().unwrap();
        let mut direct = set_direct(&file, true).is_ok();
        let raw = vec![7u8; 3 * DIRECT_ALIGN];
        let start = raw.as_ptr().align_offset(DIRECT_ALIGN) + 1;
        let misaligned = &raw[start..start + DIRECT_ALIGN];
        write_direct(&file, &mut direct, misaligned, 0).unwrap();
        let mut got = Vec::new();
        file.read_to_end(&mut got).unwrap();
        assert_eq!(got, misaligned);
        if !direct {
            // Refused and fallen back: the flag is off, so cached writes work.
            let flags = rustix::fs::fcntl_getfl(&file).unwrap();
            assert!(!flags.contains(rustix::fs::OFlags::DIRECT));
        }
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
