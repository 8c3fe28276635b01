//! Compressing layers for an output: zstd with libzstd's own workers, and gzip in
//! independent blocks compressed on every core, as pigz does. Both give the same bytes
//! for a given level whatever the number of threads or cores, so outputs stay
//! deterministic.

mod deflate;
mod gzip;

use std::io::{self, Read};
use std::ops::RangeInclusive;

use crate::error::Setting;
use crate::error::{Error, Result};
use crate::model::media::Compression;

/// What an output does with its layers (`--layer-compression`).
///
/// ```
/// use dockhand::{Compression, LayerCompression, ZSTD_DEFAULT_LEVEL};
///
/// let zstd = LayerCompression::parse("zstd").unwrap();
/// assert_eq!(zstd.target(), Some(Compression::Zstd));
/// assert_eq!(zstd.level(None)?, ZSTD_DEFAULT_LEVEL);
/// assert!(zstd.level(Some(22)).unwrap_err().is_usage());
/// assert_eq!(LayerCompression::default().name(), "keep");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerCompression {
    /// Keep each layer as stored, decompressing only what the format has no media type
    /// for (bzip2, xz). The default for OCI and `dir:` outputs.
    #[default]
    Keep,
    /// Write every layer uncompressed.
    None,
    /// Compress every layer with gzip; a layer already gzip-compressed is kept.
    Gzip,
    /// Compress every layer with zstd; a layer already zstd-compressed is kept.
    Zstd,
}

impl LayerCompression {
    /// Every choice, by its command-line name.
    pub const ALL: [LayerCompression; 4] = [
        LayerCompression::Keep,
        LayerCompression::None,
        LayerCompression::Gzip,
        LayerCompression::Zstd,
    ];

    /// Its command-line name: `keep`, `none`, `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            LayerCompression::Keep => "keep",
            LayerCompression::None => "none",
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
        }
    }

    /// The choice named `name` (see [`LayerCompression::name`]).
    pub fn parse(name: &str) -> Option<LayerCompression> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The compression written when this compresses.
    pub fn target(self) -> Option<Compression> {
        match self {
            LayerCompression::Gzip => Some(Compression::Gzip),
            LayerCompression::Zstd => Some(Compression::Zstd),
            LayerCompression::Keep | LayerCompression::None => None,
        }
    }

    /// The levels `--compression-level` accepts with this choice, and the level used
    /// when none is given; `None` when the choice does not compress.
    pub fn levels(self) -> Option<(RangeInclusive<i32>, i32)> {
        match self {
            LayerCompression::Gzip => Some((1..=9, GZIP_DEFAULT_LEVEL)),
            LayerCompression::Zstd => Some((1..=19, ZSTD_DEFAULT_LEVEL)),
            LayerCompression::Keep | LayerCompression::None => None,
        }
    }

    /// The level to compress at: `requested`, or the default; a usage error when a
    /// level is given for a choice that does not compress, or is out of its range.
    pub fn level(self, requested: Option<i32>) -> Result<i32> {
        match (self.levels(), requested) {
            (None, None) => Ok(0),
            (None, Some(_)) => Err(Error::Usage(format!(
                "{} applies to {} gzip or zstd, not {}",
                Setting::CompressionLevel,
                Setting::LayerCompression,
                self.name()
            ))),
            (Some((_, default)), None) => Ok(default),
            (Some((range, _)), Some(level)) if range.contains(&level) => Ok(level),
            (Some((range, _)), Some(level)) => Err(Error::Usage(format!(
                "{} {level} is out of range for {}: {} to {}",
                Setting::CompressionLevel,
                self.name(),
                range.start(),
                range.end()
            ))),
        }
    }
}

impl std::fmt::Display for LayerCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// gzip's level when none is given: the fastest, as crane's default (Go's BestSpeed).
/// libdeflate's level 1 is within about 2% of the size skopeo's default level gives,
/// in less time; `--compression-level 6` is the gzip tool's default.
///
/// ```
/// use dockhand::{LayerCompression, GZIP_DEFAULT_LEVEL};
///
/// assert_eq!(LayerCompression::Gzip.level(None).unwrap(), GZIP_DEFAULT_LEVEL);
/// ```
pub const GZIP_DEFAULT_LEVEL: i32 = 1;
/// zstd's level when none is given (the zstd tool's default).
///
/// ```
/// use dockhand::{LayerCompression, ZSTD_DEFAULT_LEVEL};
///
/// assert_eq!(LayerCompression::Zstd.level(None).unwrap(), ZSTD_DEFAULT_LEVEL);
/// ```
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// A reader of `input` compressed with `compression` at `level`, on `threads`
/// threads: the layer transform between a source's uncompressed layer and a sink.
pub(crate) fn compressing_reader<'a>(
    compression: Compression,
    level: i32,
    threads: usize,
    input: Box<dyn Read + 'a>,
) -> io::Result<Box<dyn Read + 'a>> {
    match compression {
        Compression::Zstd => {
            let threads = threads.min(zstd_workers_within(ZSTD_MEMORY_BUDGET, level));
            Ok(Box::new(ZstdReader::new(input, level, threads)?))
        }
        Compression::Gzip => Ok(Box::new(gzip::GzipReader::new(input, level, threads)?)),
        other => Err(io::Error::other(format!(
            "dockhand does not write {} layers",
            other.name()
        ))),
    }
}

/// What one layer's zstd workers may hold at once. Each worker holds its match tables,
/// its job's input and output and the window before it, which grow with the level
/// (about 16 MiB at the default level 3, about 160 MiB at 19): without a bound, a high
/// level multiplies that by the machine's cores. The number of workers never changes
/// the bytes written.
const ZSTD_MEMORY_BUDGET: u64 = 256 << 20;

/// How many zstd workers at `level` fit in `budget` bytes (at least one): an upper
/// bound of a worker's memory from libzstd's parameters for inputs of unknown size
/// (window log 19-23, jobs of 4 windows, chain and hash tables).
fn zstd_workers_within(budget: u64, level: i32) -> usize {
    let per_worker: u64 = match level {
        ..=5 => 16 << 20,
        6..=12 => 48 << 20,
        13..=16 => 80 << 20,
        _ => 160 << 20,
    };
    (budget / per_worker).max(1) as usize
}

/// zstd with libzstd's workers. (The zstd crate's reader asks for output before
/// giving more input, which makes libzstd wait for each job in turn: one core busy.)
struct ZstdReader<'a> {
    input: Box<dyn Read + 'a>,
    encoder: zstd::stream::raw::Encoder<'static>,
    /// Input read and not yet taken by the encoder.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    input_done: bool,
    finished: bool,
}

impl<'a> ZstdReader<'a> {
    fn new(input: Box<dyn Read + 'a>, level: i32, threads: usize) -> io::Result<Self> {
        let mut encoder = zstd::stream::raw::Encoder::new(level)?;
        // Always at least one worker: libzstd's single-threaded mode gives other
        // bytes, and the output must not depend on the machine.
        encoder.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(threads.max(1) as u32))?;
        Ok(ZstdReader {
            input,
            encoder,
            buffer: vec![0; zstd::zstd_safe::CCtx::in_size()],
            start: 0,
            end: 0,
            input_done: false,
            finished: false,
        })
    }
}

impl Read for ZstdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use zstd::stream::raw::Operation;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.finished {
                return Ok(0);
            }
            if self.start == self.end && !self.input_done {
                self.start = 0;
                self.end = loop {
                    match self.input.read(&mut self.buffer) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                self.input_done = self.end == 0;
            }
            if self.input_done {
                let mut out = zstd::stream::raw::OutBuffer::around(buf);
                let left = self.encoder.finish(&mut out, false)?;
                self.finished = left == 0;
                if out.pos() > 0 {
                    return Ok(out.pos());
                }
                continue;
            }
            // Input always goes in with the request for output, so libzstd starts the
            // next job before it waits for an earlier one.
            let status = self
                .encoder
                .run_on_buffers(&self.buffer[self.start..self.end], buf)?;
            self.start += status.bytes_read;
            if status.bytes_written > 0 {
                return Ok(status.bytes_written);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random bytes (xorshift64), the same on every run, so failures reproduce.
    pub(super) struct Noise(pub(super) u64);

    impl Noise {
        pub(super) fn byte(&mut self) -> u8 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 as u8
        }
    }

    #[test]
    fn high_zstd_levels_get_fewer_workers_whatever_the_cores() {
        assert_eq!(zstd_workers_within(ZSTD_MEMORY_BUDGET, 19), 1);
        assert_eq!(zstd_workers_within(ZSTD_MEMORY_BUDGET, 16), 3);
        assert_eq!(
            zstd_workers_within(ZSTD_MEMORY_BUDGET, ZSTD_DEFAULT_LEVEL),
            16
        );
        // Never none: a tiny budget still compresses.
        assert_eq!(zstd_workers_within(1, 19), 1);
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible and not: text-like runs mixed with pseudo-random bytes.
        let mut noise = Noise(0x2545_f491_4f6c_dd1d);
        (0..len)
            .map(|i| {
                let random = noise.byte();
                if (i / 4096) % 2 == 0 {
                    b"layer content "[i % 14]
                } else {
                    random
                }
            })
            .collect()
    }

    fn run(compression: Compression, data: &[u8], threads: usize, level: i32) -> Vec<u8> {
        let mut out = Vec::new();
        compressing_reader(
            compression,
            level,
            threads,
            Box::new(io::Cursor::new(data.to_vec())),
        )
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn gzip_and_zstd_round_trip_and_do_not_depend_on_threads() {
        for len in [
            0,
            1,
            1000,
            gzip::BLOCK - 1,
            gzip::BLOCK,
            gzip::BLOCK + 1,
            3 * gzip::BLOCK + 77,
        ] {
            let data = sample(len);
            for compression in [Compression::Gzip, Compression::Zstd] {
                let one = run(compression, &data, 1, 3);
                for threads in [2, 3, 8] {
                    assert_eq!(
                        run(compression, &data, threads, 3),
                        one,
                        "{len} {compression:?}"
                    );
                }
                let mut back = Vec::new();
                compression
                    .decoder(&one[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "{len} {compression:?}");
            }
        }
    }

    #[test]
    fn random_blocks_are_stored_and_the_stream_still_reads_back() {
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let mut random = |n: usize| -> Vec<u8> { (0..n).map(|_| noise.byte()).collect() };
        let text: Vec<u8> = b"a line of a text file in a layer\n"
            .iter()
            .copied()
            .cycle()
            .take(gzip::BLOCK)
            .collect();
        let mut data = random(2 * gzip::BLOCK);
        data.extend_from_slice(&text);
        data.extend(random(gzip::BLOCK / 2));
        let gz = run(Compression::Gzip, &data, 2, 6);
        // Stored random bytes cost 5 bytes per 64 KiB; the text all but vanishes.
        let random_len = 2 * gzip::BLOCK + gzip::BLOCK / 2;
        assert!(
            gz.len() < random_len + random_len / 1000 + 4096,
            "{}",
            gz.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn gzip_output_is_one_member_that_gzip_tools_read() {
        let data = sample(5 * gzip::BLOCK);
        let gz = run(Compression::Gzip, &data, 4, 6);
        // A single-member decoder reads all of it: one stream, one trailer.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(gz.len() < data.len());
    }
}
