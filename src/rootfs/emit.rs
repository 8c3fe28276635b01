//! The second pass: the layers read again from the base up, and each entry the first
//! pass chose written to the output tar as it passes, with its own header's attributes
//! and PAX records, under its normalized name. Directories no layer has an entry for
//! are written just before the first entry under them.

use std::io::{self, Write};

use super::apply::{ancestors, name_hash, normalize, Act, ScanError};
use super::tar_stream::{pax_record, PaxRecord, TarEntries, TarEntry, TarProblem};
use super::{read_layer, Attrs, Filesystem, FsEntry, FsKind, IMPLIED_DIR_MODE};
use crate::error::{Error, Result};
use crate::model::image::Image;
use crate::progress::Progress;
use crate::text::shown;

/// The name of the PAX header entries written (readers take the records, not it).
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// Write the filesystem `fs` of `image` into `out`; how many bytes were written.
pub(super) fn write(
    image: &Image,
    fs: &Filesystem,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut tar = TarOut {
        out,
        written: 0,
        emitted: vec![false; fs.entries.len()],
    };
    let werr = |e: io::Error| Error::io("writing the export", e);
    for (index, steps) in fs.plan.layers.iter().enumerate() {
        if steps.is_empty() {
            // Nothing of this layer shows: the first pass verified it already.
            continue;
        }
        read_layer(image, index, progress, |entries| {
            let mut steps = steps.iter().peekable();
            while let Some(entry) = entries.next_entry()? {
                let Some(step) = steps.next_if(|s| s.ordinal == entry.ordinal) else {
                    continue;
                };
                let same = normalize(&entry.name).is_some_and(|n| name_hash(&n) == step.name_hash);
                if !same {
                    return Err(ScanError::Tar(TarProblem::Malformed {
                        entry: Some(entry.name.clone()),
                        problem: "the layer read differently the second time".into(),
                    }));
                }
                let attrs = step.attrs.map(|a| &fs.plan.attrs[a as usize]);
                match step.act {
                    Act::Emit(i) => tar.entry(fs, i as usize, &entry, attrs, entries)?,
                    Act::Group(g) => {
                        let group = &fs.plan.groups[g as usize];
                        tar.entry(fs, group.carrier as usize, &entry, attrs, entries)?;
                        let carrier = &fs.entries[group.carrier as usize];
                        for &link in &group.links {
                            tar.link(fs, link as usize, &entry, attrs, carrier.path_bytes())
                                .map_err(|e| ScanError::Tar(TarProblem::Io(e)))?;
                        }
                    }
                }
            }
            if steps.next().is_some() {
                return Err(ScanError::Tar(TarProblem::Malformed {
                    entry: None,
                    problem: "the layer read differently the second time (fewer entries)".into(),
                }));
            }
            Ok(())
        })?;
    }
    // Directories only implied, with nothing under them shown.
    for i in 0..fs.entries.len() {
        if !tar.emitted[i] {
            if fs.entries[i].layer.is_some() {
                return Err(Error::Unsupported(format!(
                    "internal error: the export did not write {}",
                    shown(&fs.entries[i].path())
                )));
            }
            tar.implied(fs, i).map_err(werr)?;
        }
    }
    tar.finish().map_err(werr)
}

/// The output tar.
struct TarOut<W> {
    out: W,
    written: u64,
    /// Which final entries are written.
    emitted: Vec<bool>,
}

impl<W: Write> TarOut<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Write the implied directories above final entry `i` not written yet, the
    /// topmost first.
    fn parents(&mut self, fs: &Filesystem, i: usize) -> io::Result<()> {
        let mut missing = Vec::new();
        for parent in ancestors(fs.entries[i].path_bytes()) {
            let Some(p) = fs.index_of(parent) else {
                continue;
            };
            if self.emitted[p] {
                break;
            }
            if fs.entries[p].layer.is_none() {
                missing.push(p);
            }
        }
        for p in missing.into_iter().rev() {
            self.implied(fs, p)?;
        }
        Ok(())
    }

    /// Write final entry `i`, an implied directory.
    fn implied(&mut self, fs: &Filesystem, i: usize) -> io::Result<()> {
        self.parents(fs, i)?;
        let mut h = Block::new();
        h.octal(100..108, u64::from(IMPLIED_DIR_MODE));
        h.octal(108..116, 0);
        h.octal(116..124, 0);
        h.octal(136..148, 0);
        self.header(
            &h,
            b'5',
            &dir_name(fs.entries[i].path_bytes()),
            None,
            0,
            Vec::new(),
        )?;
        self.emitted[i] = true;
        Ok(())
    }

    /// Write final entry `i` from the layer's `entry` (its own, or, for a file with
    /// several names, the file's entry under the name it is written as), with its data
    /// and the attributes its last hard link gave it.
    fn entry<R: io::Read>(
        &mut self,
        fs: &Filesystem,
        i: usize,
        entry: &TarEntry,
        attrs: Option<&Attrs>,
        entries: &mut TarEntries<R>,
    ) -> std::result::Result<(), ScanError> {
        let io = |e: io::Error| ScanError::Tar(TarProblem::Io(e));
        self.parents(fs, i).map_err(io)?;
        let final_entry: &FsEntry = &fs.entries[i];
        let name = match final_entry.kind() {
            FsKind::Dir => dir_name(final_entry.path_bytes()),
            _ => final_entry.path_bytes().to_vec(),
        };
        let link = (entry.flag == b'2').then_some(&entry.link[..]);
        let size = if entry.flag == b'0' { entry.size } else { 0 };
        let (h, pax) = Block::fields_of(entry, final_entry.kind(), attrs);
        self.header(&h, entry.flag, &name, link, size, pax)
            .map_err(io)?;
        self.emitted[i] = true;
        if size > 0 {
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = size;
            while left > 0 {
                let n = match entries.read_data(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(ScanError::Tar(TarProblem::Malformed {
                            entry: None,
                            problem: "truncated: the layer ends inside an entry's data".into(),
                        }))
                    }
                    Err(e) => return Err(io(e)),
                };
                self.put(&buf[..n]).map_err(io)?;
                left -= n as u64;
            }
            self.pad(size).map_err(io)?;
        }
        Ok(())
    }

    /// Write final entry `i` as a hard link to `carrier`, with the attributes of the
    /// file's `entry` (and of its last hard link).
    fn link(
        &mut self,
        fs: &Filesystem,
        i: usize,
        entry: &TarEntry,
        attrs: Option<&Attrs>,
        carrier: &[u8],
    ) -> io::Result<()> {
        self.parents(fs, i)?;
        let (h, pax) = Block::fields_of(entry, fs.entries[i].kind(), attrs);
        self.header(&h, b'1', fs.entries[i].path_bytes(), Some(carrier), 0, pax)?;
        self.emitted[i] = true;
        Ok(())
    }

    /// Write a header of type `flag` named `name` (with `link` as its link name) over
    /// the attribute fields of `fields`, preceded by a PAX header when the names do not
    /// fit or `pax` carries records (but for those naming the path, link and size,
    /// which this header sets).
    fn header(
        &mut self,
        fields: &Block,
        flag: u8,
        name: &[u8],
        link: Option<&[u8]>,
        size: u64,
        pax: Vec<&PaxRecord>,
    ) -> io::Result<()> {
        let mut records = Vec::new();
        if name.len() > 100 {
            records.extend(pax_record(b"path", name));
        }
        let link = link.unwrap_or_default();
        if link.len() > 100 {
            records.extend(pax_record(b"linkpath", link));
        }
        for (key, value) in pax {
            if !matches!(&key[..], b"path" | b"linkpath" | b"size") {
                records.extend(pax_record(key, value));
            }
        }
        if !records.is_empty() {
            let mut x = Block::new();
            x.octal(100..108, 0o644);
            x.octal(108..116, 0);
            x.octal(116..124, 0);
            x.octal(136..148, 0);
            x.finish(b'x', PAX_NAME, b"", records.len() as u64);
            self.put(&x.0)?;
            self.put(&records)?;
            self.pad(records.len() as u64)?;
        }
        let mut h = Block(fields.0);
        h.finish(flag, name, link, size);
        self.put(&h.0)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let padding = (512 - size % 512) % 512;
        self.put(&[0u8; 512][..padding as usize])
    }

    /// The end-of-archive marker; the bytes written in all.
    fn finish(mut self) -> io::Result<u64> {
        self.put(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.written)
    }
}

/// A directory's name in the tar: with a trailing `/`, as `docker export` writes it.
fn dir_name(path: &[u8]) -> Vec<u8> {
    let mut name = path.to_vec();
    name.push(b'/');
    name
}

/// A ustar header being built.
struct Block([u8; 512]);

impl Block {
    fn new() -> Block {
        Block([0u8; 512])
    }

    /// A header holding the attribute fields of `entry`'s header as they are (mode,
    /// owner IDs, time, owner names, device numbers: octal or base-256, whatever its
    /// writer chose), those a hard link gave the file, of `kind`, over them; and the
    /// PAX records to write with it.
    fn fields_of<'e>(
        entry: &'e TarEntry,
        kind: FsKind,
        attrs: Option<&'e Attrs>,
    ) -> (Block, Vec<&'e PaxRecord>) {
        let raw = entry.header.as_bytes();
        let mut h = Block::new();
        for range in [100..124, 136..148, 265..345] {
            h.0[range.clone()].copy_from_slice(&raw[range]);
        }
        match attrs {
            Some(attrs) => {
                attrs.overlay(kind, &mut h.0);
                (h, attrs.records(kind, &entry.pax))
            }
            None => (h, entry.pax.iter().collect()),
        }
    }

    /// `value` as an octal field filling `range` (NUL-terminated).
    fn octal(&mut self, range: std::ops::Range<usize>, value: u64) {
        let width = range.len() - 1;
        let text = format!("{value:0width$o}");
        self.0[range.start..range.start + width].copy_from_slice(text.as_bytes());
        self.0[range.end - 1] = 0;
    }

    /// Set the type, name, link name and size (names cut to their fields: a longer one
    /// travels in a PAX record), the ustar magic, and the checksum.
    fn finish(&mut self, flag: u8, name: &[u8], link: &[u8], size: u64) {
        let n = name.len().min(100);
        self.0[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        self.0[157..157 + l].copy_from_slice(&link[..l]);
        self.0[156] = flag;
        if size < 0o77777777777 {
            self.octal(124..136, size);
        } else {
            // Base-256, as GNU tar and Go write sizes of 8 GiB and more.
            self.0[124] = 0x80;
            self.0[128..136].copy_from_slice(&size.to_be_bytes());
        }
        self.0[257..263].copy_from_slice(b"ustar\0");
        self.0[263..265].copy_from_slice(b"00");
        self.0[148..156].copy_from_slice(b"        ");
        let sum: u64 = self.0.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        self.0[148..156].copy_from_slice(text.as_bytes());
    }
}
