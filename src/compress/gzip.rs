//! gzip on every core, as pigz does: the input in blocks compressed independently
//! (with libdeflate, which is several times faster than zlib for the same size), joined
//! into one deflate stream in one gzip member, with the CRC and length trailer.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::deflate::make_joinable;

/// Bytes of input compressed as one independent block: large enough that starting
/// each block without the previous one's window costs well under 1% of size.
pub(super) const BLOCK: usize = 512 * 1024;

/// One block of input to compress: its number, its bytes, and whether it ends the
/// stream.
struct Job {
    index: u64,
    data: Vec<u8>,
    last: bool,
}

type Compressed = (u64, io::Result<Vec<u8>>);

/// A reader of the gzip compression of its input. Blocks are compressed on worker
/// threads; the reader's thread reads the input, hands blocks out and returns them in
/// order, with at most two blocks per worker in flight. The bytes depend on the level
/// only, never on the number of workers.
pub(super) struct GzipReader<'a> {
    input: Box<dyn Read + 'a>,
    /// The block read ahead (which tells whether the one before it is the last).
    next: Option<Vec<u8>>,
    crc: libdeflater::Crc,
    length: u64,
    jobs: Option<Sender<Job>>,
    done: Receiver<Compressed>,
    workers: Vec<JoinHandle<()>>,
    /// Blocks compressed ahead of their turn.
    waiting: BTreeMap<u64, Vec<u8>>,
    /// Blocks handed out, and blocks returned.
    sent: u64,
    returned: u64,
    in_flight: u64,
    input_done: bool,
    trailer_done: bool,
    /// Output not yet returned: the header, a block or the trailer.
    pending: Vec<u8>,
    position: usize,
}

impl<'a> GzipReader<'a> {
    pub(super) fn new(input: Box<dyn Read + 'a>, level: i32, threads: usize) -> io::Result<Self> {
        let compression = libdeflater::CompressionLvl::new(level)
            .map_err(|_| io::Error::other(format!("invalid gzip level {level}")))?;
        let threads = threads.max(1);
        let (job_tx, job_rx) = channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Compressed>();
        let workers = (0..threads)
            .map(|_| {
                let (jobs, done) = (Arc::clone(&job_rx), done_tx.clone());
                std::thread::spawn(move || compress_blocks(&jobs, &done, compression))
            })
            .collect();
        // The header gzip and Go write, with no name and no time: deterministic.
        let xfl = match level {
            1 => 4,
            9.. => 2,
            _ => 0,
        };
        Ok(GzipReader {
            input,
            next: None,
            crc: libdeflater::Crc::new(),
            length: 0,
            jobs: Some(job_tx),
            done: done_rx,
            workers,
            waiting: BTreeMap::new(),
            sent: 0,
            returned: 0,
            in_flight: threads as u64 * 2,
            input_done: false,
            trailer_done: false,
            pending: vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, xfl, 0xff],
            position: 0,
        })
    }

    /// The next block of input as a job, or `None` after the last one.
    fn next_job(&mut self) -> io::Result<Option<Job>> {
        let data = match self.next.take() {
            Some(data) => data,
            None if self.sent == 0 => read_block(&mut self.input)?,
            None => return Ok(None),
        };
        let following = if data.len() == BLOCK {
            read_block(&mut self.input)?
        } else {
            Vec::new()
        };
        let last = following.is_empty();
        if !last {
            self.next = Some(following);
        }
        Ok(Some(Job {
            index: self.sent,
            data,
            last,
        }))
    }

    /// The output after the pending one: the blocks in order, then the trailer; empty
    /// at the end.
    fn next_output(&mut self) -> io::Result<Vec<u8>> {
        let stopped = || io::Error::other("gzip workers stopped");
        while !self.input_done && self.sent - self.returned < self.in_flight {
            let Some(job) = self.next_job()? else {
                self.input_done = true;
                break;
            };
            self.crc.update(&job.data);
            self.length += job.data.len() as u64;
            self.input_done = job.last;
            self.jobs
                .as_ref()
                .ok_or_else(stopped)?
                .send(job)
                .map_err(|_| stopped())?;
            self.sent += 1;
        }
        if self.returned < self.sent {
            loop {
                if let Some(block) = self.waiting.remove(&self.returned) {
                    self.returned += 1;
                    return Ok(block);
                }
                let (index, result) = self.done.recv().map_err(|_| stopped())?;
                self.waiting.insert(index, result?);
            }
        }
        if !self.trailer_done {
            self.trailer_done = true;
            // CRC-32 and length (mod 2^32) of the input, little-endian.
            let mut trailer = self.crc.sum().to_le_bytes().to_vec();
            trailer.extend_from_slice(&(self.length as u32).to_le_bytes());
            return Ok(trailer);
        }
        Ok(Vec::new())
    }
}

impl Read for GzipReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.pending.len() {
            self.pending = self.next_output()?;
            self.position = 0;
            if self.pending.is_empty() {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.position);
        buf[..n].copy_from_slice(&self.pending[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

impl Drop for GzipReader<'_> {
    fn drop(&mut self) {
        // Closing the queue stops the workers after their current block.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn read_block(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// A worker: compress blocks until the queue closes or the reader is gone.
fn compress_blocks(
    jobs: &Mutex<Receiver<Job>>,
    done: &Sender<Compressed>,
    level: libdeflater::CompressionLvl,
) {
    let mut compressor = libdeflater::Compressor::new(level);
    let mut probe =
        libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level 1 exists"));
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let result = if incompressible(&mut probe, &job.data) {
            Ok(stored(&job.data, job.last))
        } else {
            deflate_block(&mut compressor, &job)
        };
        if done.send((job.index, result)).is_err() {
            return;
        }
    }
}

/// Bytes of each sample [`incompressible`] compresses.
const SAMPLE: usize = 4096;

/// Does `data` look like random bytes (compressed or encrypted files)? Four samples
/// spread over it must all shrink by less than 3% at the fastest level. Compressing
/// such data gains nothing and costs more than compressing text, so it is stored.
/// The answer depends on the bytes only, so the output stays deterministic.
fn incompressible(probe: &mut libdeflater::Compressor, data: &[u8]) -> bool {
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let mut out = vec![0; probe.deflate_compress_bound(SAMPLE)];
    (0..4).all(|k| {
        let start = k * (data.len() - SAMPLE) / 3;
        probe
            .deflate_compress(&data[start..start + SAMPLE], &mut out)
            .is_ok_and(|n| n * 100 >= SAMPLE * 97)
    })
}

/// `data` as deflate stored blocks (at most 65,535 bytes each), byte-aligned at both
/// ends; the last block is final when `last`.
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    const MAX: usize = 65_535;
    let mut out = Vec::with_capacity(data.len() + data.len().div_ceil(MAX) * 5 + 5);
    let mut chunks = data.chunks(MAX).peekable();
    while let Some(chunk) = chunks.next() {
        let final_block = last && chunks.peek().is_none();
        out.push(u8::from(final_block));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Raw deflate of one block; every block but the last is made joinable.
fn deflate_block(compressor: &mut libdeflater::Compressor, job: &Job) -> io::Result<Vec<u8>> {
    let mut out = vec![0; compressor.deflate_compress_bound(job.data.len())];
    let n = compressor
        .deflate_compress(&job.data, &mut out)
        .map_err(|e| io::Error::other(format!("compressing a block: {e:?}")))?;
    out.truncate(n);
    if !job.last {
        make_joinable(&mut out)?;
    }
    Ok(out)
}
