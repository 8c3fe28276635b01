//! Building archives by hand for hostile-input tests: raw tar entries (any name, any
//! link target, any claimed size) and small but valid docker-save archives to damage.

use std::path::Path;

use serde_json::json;

/// One raw tar entry.
pub enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File(path.to_string(), data.into())
}

pub fn symlink(path: &str, target: &str) -> Entry {
    Entry::Symlink(path.to_string(), target.to_string())
}

pub fn hardlink(path: &str, target: &str) -> Entry {
    Entry::Hardlink(path.to_string(), target.to_string())
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    // Write names verbatim: these tests need names the builder API would refuse.
    let old = h.as_old_mut();
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "test names must fit a header"
    );
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

/// A tar of `entries`, names and link targets exactly as given.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            Entry::File(p, d) => (
                raw_header(p, tar::EntryType::Regular, d.len() as u64, ""),
                d,
            ),
            Entry::Dir(p) => (raw_header(p, tar::EntryType::Directory, 0, ""), &[]),
            Entry::Symlink(p, t) => (raw_header(p, tar::EntryType::Symlink, 0, t), &[]),
            Entry::Hardlink(p, t) => (raw_header(p, tar::EntryType::Link, 0, t), &[]),
        };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An uncompressed layer tar holding one file.
pub fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    tar_of(&[file(name, content)])
}

/// The parts of a small docker-save archive, to be altered by a test.
pub struct Save {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: serde_json::Value,
}

impl Save {
    /// A valid one-image archive with `n` layers, tagged `hostile/test:1`.
    pub fn new(n: usize) -> Save {
        let layers: Vec<Vec<u8>> = (0..n)
            .map(|i| layer(&format!("f{i}"), format!("layer {i}").as_bytes()))
            .collect();
        Save::with_layers(layers, "2024-01-01T00:00:00Z")
    }

    pub fn with_layers(layers: Vec<Vec<u8>>, created: &str) -> Save {
        let diff_ids: Vec<String> = layers.iter().map(|l| super::sha256(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let hex = super::sha256(&config)[7..].to_string();
        let paths: Vec<String> = (0..layers.len())
            .map(|i| format!("l{i}/layer.tar"))
            .collect();
        Save {
            manifest: json!([{"Config": format!("{hex}.json"), "RepoTags": ["hostile/test:1"], "Layers": paths}]),
            config,
            layers,
        }
    }

    pub fn config_name(&self) -> String {
        format!("{}.json", &super::sha256(&self.config)[7..])
    }

    /// The archive's entries: config, layers, manifest.json last.
    pub fn entries(&self) -> Vec<Entry> {
        let mut e = vec![file(&self.config_name(), self.config.clone())];
        for (i, l) in self.layers.iter().enumerate() {
            e.push(file(&format!("l{i}/layer.tar"), l.clone()));
        }
        e.push(file(
            "manifest.json",
            serde_json::to_vec(&self.manifest).unwrap(),
        ));
        e
    }

    pub fn tar(&self) -> Vec<u8> {
        tar_of(&self.entries())
    }
}

/// Write `bytes` to `dir/name` and return the path as a string.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// One raw tar entry of type flag `kind` named `name` (verbatim, at most 100 bytes)
/// whose header claims `size` bytes, followed by `data` padded to whole blocks.
pub fn raw_entry(kind: u8, name: &str, size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = raw_header(name, tar::EntryType::new(kind), 0, "");
    h.set_size(size);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A PAX extended header (type `x`) holding `records`, applying to the next entry.
pub fn pax_header(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        // The length counts itself: grow it until it does.
        let body = key.len() + value.len() + 3;
        let mut len = body + 1;
        while len.to_string().len() + body != len {
            len = len.to_string().len() + body;
        }
        data.extend(format!("{len} {key}=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    raw_entry(b'x', "pax_header", data.len() as u64, &data)
}

/// A GNU long name entry (type `L`) naming the next entry `name`.
pub fn gnu_long_name(name: &[u8]) -> Vec<u8> {
    let mut data = name.to_vec();
    data.push(0);
    raw_entry(b'L', "././@LongLink", data.len() as u64, &data)
}

/// `entries` as a tar without its end marker, to append raw entries to.
pub fn tar_without_end(entries: &[Entry]) -> Vec<u8> {
    let mut t = tar_of(entries);
    t.truncate(t.len() - 1024);
    t
}

/// `data` compressed as xz, with the dictionary size of its LZMA2 filter patched to
/// the encoded byte `dict` ((2 | dict & 1) << (dict / 2 + 11) bytes: 28 is 64 MiB, 37
/// is 1.5 GiB) and the block header's CRC32 fixed, so only the memory it asks of a
/// decoder changes.
pub fn xz_with_dictionary(data: &[u8], dict: u8) -> Vec<u8> {
    use std::io::Write;
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 0);
    enc.write_all(data).unwrap();
    let mut xz = enc.finish().unwrap();
    let block = 12; // the stream header's size
    let header_len = (xz[block] as usize + 1) * 4;
    let flags = xz[block + 1];
    assert_eq!(flags & 0x03, 0, "one filter");
    let mut at = block + 2;
    // Skip the optional compressed and uncompressed sizes (variable-length integers).
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            while xz[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
        }
    }
    assert_eq!(
        &xz[at..at + 2],
        [0x21, 0x01],
        "LZMA2 with one property byte"
    );
    xz[at + 2] = dict;
    let crc_at = block + header_len - 4;
    let mut crc = flate2::Crc::new();
    crc.update(&xz[block..crc_at]);
    xz[crc_at..crc_at + 4].copy_from_slice(&crc.sum().to_le_bytes());
    xz
}

/// A zstd frame of raw (stored) blocks holding `data`, whose header asks for a window
/// of 2^`window_log` bytes (10..=41).
pub fn zstd_with_window(window_log: u32, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, ((window_log - 10) << 3) as u8];
    let max = 128 << 10; // a block never exceeds 128 KiB
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(max).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let header = ((chunk.len() as u32) << 3) | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(chunk);
    }
    frame
}

/// A one-image archive whose single layer is stored as `stored` (compressed) and is
/// `uncompressed` once decompressed.
pub fn save_with_stored_layer(stored: Vec<u8>, uncompressed: &[u8]) -> Save {
    let mut save = Save::with_layers(vec![stored], "2024-01-01T00:00:00Z");
    // with_layers hashed the stored bytes: the config lists the uncompressed digest.
    save.config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [super::sha256(uncompressed)]},
    }))
    .unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    save
}

/// A deterministic pseudo-random byte source (xorshift), for test data.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` bytes of text made of a small vocabulary: compressible, but not trivially.
    pub fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "layer", "image", "digest", "config", "manifest", "blob", "tar", "index", "docker",
            "oci", "podman", "zstd", "gzip", "deflate", "sha256", "\n",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            let w = WORDS[(self.next() % 16) as usize];
            out.extend_from_slice(w.as_bytes());
            out.push(b' ');
        }
        out.truncate(len);
        out
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
