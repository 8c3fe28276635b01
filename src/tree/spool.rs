//! Opening an input: a directory is read in place, an uncompressed tar file is indexed in
//! place, and anything else (stdin, a pipe, a compressed archive) is decompressed once
//! into an anonymous temp file, which the OS removes on every exit path.

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::Path;

use super::{DirTree, FileTree, TarIndex};
use crate::error::{Error, Result};
use crate::media::Compression;

/// An opened input.
pub struct Input {
    /// The files of the input.
    pub tree: Box<dyn FileTree>,
}

/// Open `path` (`-` for stdin) as a tree.
pub fn open_input(path: &str) -> Result<Input> {
    if path == "-" {
        if io::IsTerminal::is_terminal(&io::stdin()) {
            return Err(Error::Unsupported(
                "refusing to read an archive from a terminal; pipe one into stdin".into(),
            ));
        }
        // Read stdin as a File so the kernel can splice it into the spool file.
        let stdin = std::os::fd::AsFd::as_fd(&io::stdin())
            .try_clone_to_owned()
            .map_err(|e| Error::io("reading stdin", e))?;
        return spool(File::from(stdin), "stdin");
    }
    let p = Path::new(path);
    let meta = fs::metadata(p).map_err(|e| Error::io(format!("opening {path}"), e))?;
    if meta.is_dir() {
        return Ok(Input {
            tree: Box::new(DirTree::new(p, path)),
        });
    }
    let mut file = File::open(p).map_err(|e| Error::io(format!("opening {path}"), e))?;
    if !meta.is_file() {
        return spool(file, path);
    }
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).map_err(|e| Error::io(format!("reading {path}"), e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            file: path.to_string(),
            reason: "the file is empty".into(),
        });
    }
    let compression = Compression::detect(&head[..n]);
    if compression == Compression::None {
        file.rewind()
            .map_err(|e| Error::io(format!("reading {path}"), e))?;
        return Ok(Input {
            tree: Box::new(TarIndex::new(file, path)?),
        });
    }
    file.rewind()
        .map_err(|e| Error::io(format!("reading {path}"), e))?;
    spool(file, path)
}

fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Decompress (if needed) and copy `input` into an anonymous temp file, then index it.
fn spool(mut input: File, name: &str) -> Result<Input> {
    let mut head = [0u8; 8];
    let n =
        read_head(&mut input, &mut head).map_err(|e| Error::io(format!("reading {name}"), e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            file: name.to_string(),
            reason: "the input is empty".into(),
        });
    }
    let compression = Compression::detect(&head[..n]);
    let mut temp = tempfile::tempfile()
        .map_err(|e| Error::io("creating a temp file to spool the input", e))?;
    if compression == Compression::None {
        // A plain tar: let the kernel move the bytes (splice or copy_file_range).
        io::Write::write_all(&mut temp, &head[..n])
            .map_err(|e| Error::io("writing the spool file", e))?;
        io::copy(&mut input, &mut temp).map_err(|e| Error::io(format!("reading {name}"), e))?;
    } else {
        let reader = io::Cursor::new(head[..n].to_vec()).chain(input);
        let mut decoded = compression
            .decoder(reader)
            .map_err(|e| Error::io(format!("decompressing {name}"), e))?;
        let mut out = io::BufWriter::with_capacity(1 << 20, &mut temp);
        io::copy(&mut decoded, &mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::Truncated {
                    file: name.to_string(),
                    detail: format!("the {} stream ends early", compression.name()),
                }
            } else {
                Error::io(
                    format!("reading {name} ({} compressed)", compression.name()),
                    e,
                )
            }
        })?;
        io::Write::flush(&mut out).map_err(|e| Error::io("writing the spool file", e))?;
    }
    let len = temp
        .metadata()
        .map_err(|e| Error::io("reading the spool file", e))?
        .len();
    if len == 0 {
        return Err(Error::NotAnImage {
            file: name.to_string(),
            reason: "the input is empty once decompressed".into(),
        });
    }
    temp.rewind()
        .map_err(|e| Error::io("reading the spool file", e))?;
    Ok(Input {
        tree: Box::new(TarIndex::new(temp, name)?),
    })
}
