//! A layer's tar read as a stream, entry by entry: the header (with its GNU long names
//! and PAX records applied), then the entry's data, read or skipped. The same caps as
//! the archive index (`container/tar_index.rs`): extension headers, names and link
//! targets are bounded before anything is allocated for them; entry data is never held.

use std::io::{self, Read};

use tar::{EntryType, Header};

pub(crate) use crate::container::PaxRecord;
use crate::container::{
    checksum_ok, extension_name, oversized_extension, padded, pax_records, read_full, until_nul,
    BLOCK, MAX_PATH_BYTES, MAX_PATH_DEPTH,
};
use crate::model::digest::Hasher;

/// What is wrong with a layer's tar, before the layer and image are named.
#[derive(Debug)]
pub(crate) enum TarProblem {
    /// Reading failed (a verifying layer reader reports a digest mismatch this way).
    Io(io::Error),
    /// The tar itself is malformed; about the entry named, when one is.
    Malformed {
        entry: Option<Vec<u8>>,
        problem: String,
    },
}

impl TarProblem {
    fn whole(problem: impl Into<String>) -> TarProblem {
        TarProblem::Malformed {
            entry: None,
            problem: problem.into(),
        }
    }

    fn entry(name: &[u8], problem: impl Into<String>) -> TarProblem {
        TarProblem::Malformed {
            entry: Some(name.to_vec()),
            problem: problem.into(),
        }
    }
}

/// One entry of a layer, as its headers say.
pub(crate) struct TarEntry {
    /// Its position among the layer's entries (extension headers not counted), from 0.
    pub ordinal: u32,
    /// The name as stored (a GNU long name or PAX `path` applied), not normalized.
    pub name: Vec<u8>,
    /// The link target as stored (GNU long link or PAX `linkpath` applied); empty when
    /// the header has none.
    pub link: Vec<u8>,
    /// The type flag, with an old-style directory (a regular type and a name ending in
    /// `/`) and a GNU dump directory turned into `5`, a contiguous file into `0`.
    pub flag: u8,
    /// The header block.
    pub header: Box<Header>,
    /// Every record of the PAX header before it, in order.
    pub pax: Vec<PaxRecord>,
    /// The data's size (PAX `size` applied).
    pub size: u64,
}

/// The entries of a tar stream.
pub(crate) struct TarEntries<R> {
    inner: R,
    /// Bytes consumed so far, for messages.
    offset: u64,
    /// Data bytes of the current entry not read yet, and its padding after them.
    left: u64,
    padding: u64,
    /// Entries seen, extension headers not counted.
    count: u32,
    /// The most entries accepted.
    max_entries: u32,
    ended: bool,
}

impl<R: Read> TarEntries<R> {
    /// The entries of the tar `inner` reads; more than `max_entries` is an error.
    pub fn new(inner: R, max_entries: u32) -> Self {
        TarEntries {
            inner,
            offset: 0,
            left: 0,
            padding: 0,
            count: 0,
            max_entries,
            ended: false,
        }
    }

    /// The next entry, after skipping what is left of the current one's data; `None`
    /// at the end-of-archive marker (or where the data ends between entries).
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, TarProblem> {
        self.skip_data(None)?;
        if self.ended {
            return Ok(None);
        }
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<PaxRecord> = Vec::new();
        let mut pending_extension = false;
        let mut block = Box::new([0u8; BLOCK]);
        loop {
            let at = self.offset;
            let n = read_full(&mut self.inner, &mut block[..]).map_err(TarProblem::Io)?;
            self.offset += n as u64;
            if n == 0 && !pending_extension {
                self.ended = true;
                return Ok(None);
            }
            if n < BLOCK {
                if at == 0 && !block[..n].windows(5).any(|w| w == b"ustar") {
                    return Err(TarProblem::whole("not a tar archive"));
                }
                return Err(TarProblem::whole(
                    "truncated: the layer ends inside a tar header",
                ));
            }
            if block.iter().all(|&b| b == 0) {
                // Two zero blocks end an archive; one followed by anything ends it too,
                // as in GNU tar. The rest is read (and verified) by `finish`.
                self.ended = true;
                return Ok(None);
            }
            if !checksum_ok(&block) {
                if at == 0 && &block[257..262] != b"ustar" {
                    return Err(TarProblem::whole("not a tar archive"));
                }
                return Err(TarProblem::whole(format!(
                    "corrupt tar header at byte {at} (bad checksum)"
                )));
            }
            let header = Header::from_byte_slice(&block[..]);
            let kind = header.entry_type();
            let size = header.entry_size().map_err(|_| {
                TarProblem::whole(format!("tar header at byte {at} has an invalid size field"))
            })?;
            let extension = extension_name(kind);
            if let Some(what) = extension {
                if let Some(problem) = oversized_extension(what, size, at) {
                    return Err(TarProblem::whole(problem));
                }
                let mut data = vec![0u8; size as usize];
                let got = read_full(&mut self.inner, &mut data).map_err(TarProblem::Io)?;
                self.offset += got as u64;
                if got < data.len() {
                    return Err(TarProblem::whole(format!(
                        "truncated: the layer ends inside a {what}"
                    )));
                }
                self.left = 0;
                self.padding = padded(size) - size;
                self.skip_data(None)?;
                match kind {
                    EntryType::GNULongName => long_name = Some(until_nul(data)),
                    EntryType::GNULongLink => long_link = Some(until_nul(data)),
                    EntryType::XHeader => {
                        let records = pax_records(&data).ok_or_else(|| {
                            TarProblem::whole(format!(
                                "malformed PAX record in the {what} at byte {at}"
                            ))
                        })?;
                        // Two PAX headers in a row: the later one's records win.
                        pax.extend(records);
                    }
                    // Global records change nothing a filesystem holds (Docker and Go's
                    // archive/tar do not apply them either).
                    _ => {}
                }
                pending_extension = true;
                continue;
            }
            if self.count >= self.max_entries {
                return Err(TarProblem::whole(format!(
                    "more than {} entries, the limit for one layer",
                    self.max_entries
                )));
            }
            let ordinal = self.count;
            self.count += 1;
            let from_pax = |key: &[u8]| {
                pax.iter()
                    .rev()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let name = long_name
                .or_else(|| from_pax(b"path"))
                .unwrap_or_else(|| header.path_bytes().into_owned());
            let link = long_link
                .or_else(|| from_pax(b"linkpath"))
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()))
                .unwrap_or_default();
            check_name(&name, "its name", &name)?;
            check_name(&name, "its link target", &link)?;
            let size = match from_pax(b"size") {
                Some(text) => std::str::from_utf8(&text)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| TarProblem::entry(&name, "its PAX size is not a number"))?,
                None => size,
            };
            let sparse = kind == EntryType::GNUSparse
                || pax.iter().any(|(k, _)| k.starts_with(b"GNU.sparse."));
            if sparse {
                return Err(TarProblem::entry(
                    &name,
                    "it is a sparse file, which dockhand does not apply (image layers hold none)",
                ));
            }
            let raw = block[156];
            let flag = match raw {
                b'0' | 0 if name.ends_with(b"/") => b'5',
                b'0' | 0 | b'7' => b'0',
                b'D' => b'5',
                b'1'..=b'6' => raw,
                _ => {
                    return Err(TarProblem::entry(
                        &name,
                        format!(
                            "its type {} is no file, directory, link, device or FIFO",
                            crate::text::escape(&String::from_utf8_lossy(&[raw]))
                        ),
                    ))
                }
            };
            self.left = size;
            self.padding = padded(size) - size;
            let mut header = Box::new(Header::new_old());
            header.as_mut_bytes().copy_from_slice(&block[..]);
            return Ok(Some(TarEntry {
                ordinal,
                name,
                link,
                flag,
                header,
                pax,
                size,
            }));
        }
    }

    /// Read the current entry's data (at most what is left of it).
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the layer ends inside an entry's data",
            ));
        }
        self.left -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }

    /// Pass over what is left of the current entry's data and padding, hashing the
    /// data into `hasher` when given.
    pub fn skip_data(&mut self, mut hasher: Option<&mut Hasher>) -> Result<(), TarProblem> {
        let mut buf = [0u8; 64 * 1024];
        while self.left > 0 {
            let n = match self.read_data(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_some() => {
                    return Err(TarProblem::whole(
                        "truncated: the layer ends inside an entry's data",
                    ))
                }
                Err(e) => return Err(TarProblem::Io(e)),
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&buf[..n]);
            }
        }
        while self.padding > 0 {
            let want = buf.len().min(self.padding as usize);
            let n = read_full(&mut self.inner, &mut buf[..want]).map_err(TarProblem::Io)?;
            self.offset += n as u64;
            if n == 0 {
                // Padding may be cut short at the very end: the next header read sees it.
                self.padding = 0;
                break;
            }
            self.padding -= n as u64;
        }
        Ok(())
    }

    /// Read the rest of the stream (past the end marker), so that a verifying reader
    /// checks its digests; the stream must have ended.
    pub fn finish(mut self) -> Result<(), TarProblem> {
        self.skip_data(None)?;
        io::copy(&mut self.inner, &mut io::sink()).map_err(TarProblem::Io)?;
        Ok(())
    }
}

/// A numeric header field as Go's archive/tar (and so Docker) reads it: octal digits
/// between optional spaces and NULs (none at all is 0), or base-256 (GNU, for values
/// octal cannot hold) when the first byte's high bit is set. `None` for anything else,
/// a negative base-256 value, or one over 64 bits.
pub(crate) fn numeric(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return None;
            }
            let mut value = u64::from(first & 0x3f);
            for &b in rest {
                if value >> 56 != 0 {
                    return None;
                }
                value = (value << 8) | u64::from(b);
            }
            return Some(value);
        }
    }
    let trim = |b: &u8| *b == 0 || *b == b' ';
    let start = field.iter().position(|b| !trim(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !trim(b))
        .map_or(start, |e| e + 1);
    let digits = &field[start..end];
    if digits.is_empty() {
        return Some(0);
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(value)
}

/// One PAX record, `"<len> <key>=<value>\n"`, its length counting itself.
pub(crate) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // the space, `=` and newline
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Refuse a name or link target over [`MAX_PATH_BYTES`] or [`MAX_PATH_DEPTH`], or
/// holding a NUL byte (which no file name can).
fn check_name(entry: &[u8], what: &str, name: &[u8]) -> Result<(), TarProblem> {
    if name.len() > MAX_PATH_BYTES {
        return Err(TarProblem::entry(
            &entry[..entry.len().min(MAX_PATH_BYTES)],
            format!(
                "{what} is {} bytes long, over the limit of {MAX_PATH_BYTES} bytes",
                name.len()
            ),
        ));
    }
    let depth = name
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count();
    if depth > MAX_PATH_DEPTH {
        return Err(TarProblem::entry(
            entry,
            format!("{what} has {depth} components, over the limit of {MAX_PATH_DEPTH}"),
        ));
    }
    if name.contains(&0) {
        return Err(TarProblem::entry(entry, format!("{what} holds a NUL byte")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_read_as_go_reads_them() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"  755 \0"), Some(0o755));
        assert_eq!(numeric(&[0u8; 8]), Some(0));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(&[0xff; 8]), None);
        assert_eq!(numeric(b"12x4\0"), None);
        assert_eq!(numeric(b"7777777777777777777777\0"), None);
    }

    #[test]
    fn pax_records_round_trip() {
        let mut data = pax_record(b"path", b"a/b\nc");
        data.extend(pax_record(b"SCHILY.xattr.user.x", &[0, 1, 2]));
        let records = pax_records(&data).unwrap();
        assert_eq!(records[0], (b"path".to_vec(), b"a/b\nc".to_vec()));
        assert_eq!(records[1].1, vec![0, 1, 2]);
        // A length that does not count itself is refused.
        assert!(pax_records(b"5 a=b\n").is_none());
        // Lengths crossing a power of ten count their own digits.
        for n in 90..110 {
            let rec = pax_record(b"k", &vec![b'v'; n]);
            let len: usize =
                std::str::from_utf8(&rec[..rec.iter().position(|&b| b == b' ').unwrap()])
                    .unwrap()
                    .parse()
                    .unwrap();
            assert_eq!(len, rec.len());
        }
    }
}
