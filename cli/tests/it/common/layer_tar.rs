//! Layer tars built entry by entry, for tests that need exact entries: whiteouts,
//! opaque markers, links, modes and owners.

/// A layer tar built entry by entry: names and link targets as given (at most 100
/// bytes), each entry with its own mode, owner and time.
pub struct LayerTar {
    /// The tar so far (no end-of-archive marker yet).
    pub bytes: Vec<u8>,
    /// The time of the layer's entries (each a second apart, so that a time that
    /// comes from the wrong layer or entry shows).
    pub mtime: u64,
}

impl LayerTar {
    /// An empty layer whose first entry has time `mtime`.
    pub fn new(mtime: u64) -> LayerTar {
        LayerTar {
            bytes: Vec::new(),
            mtime,
        }
    }

    /// One entry of type `kind` (a tar type flag).
    pub fn entry(
        mut self,
        kind: u8,
        name: &str,
        link: &str,
        data: &[u8],
        mode: u32,
        owner: u64,
    ) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(self.mtime);
        self.mtime += 1;
        h.set_uid(owner);
        h.set_gid(owner);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    /// A directory, 0755, owned by root.
    pub fn dir(self, name: &str) -> Self {
        self.entry(b'5', name, "", b"", 0o755, 0)
    }
    /// A directory with this mode and owner (uid and gid).
    pub fn dir_owned(self, name: &str, mode: u32, owner: u64) -> Self {
        self.entry(b'5', name, "", b"", mode, owner)
    }
    /// A regular file, 0644, owned by root.
    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(b'0', name, "", data, 0o644, 0)
    }
    /// A regular file with this mode and owner (uid and gid).
    pub fn file_owned(self, name: &str, data: &[u8], mode: u32, owner: u64) -> Self {
        self.entry(b'0', name, "", data, mode, owner)
    }
    /// A symbolic link to `target`.
    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(b'2', name, target, b"", 0o777, 0)
    }
    /// A hard link to `target`.
    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(b'1', name, target, b"", 0o644, 0)
    }
    /// A whiteout (or opaque marker) entry: an empty file of this name.
    pub fn whiteout(self, name: &str) -> Self {
        self.entry(b'0', name, "", b"", 0o644, 0)
    }

    /// A regular file of `size` bytes, all `fill` but the last, which is `last`
    /// (its name set by the tar crate, so it may be long).
    pub fn big_file(mut self, name: &str, size: usize, fill: u8, last: u8) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(name).unwrap();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes
            .resize(self.bytes.len() + size.saturating_sub(1), fill);
        if size > 0 {
            self.bytes.push(last);
        }
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    /// The tar, with its end-of-archive marker.
    pub fn done(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}

/// A docker-save archive of one image whose only layer is `layer`, stored gzipped
/// (fast), written to `dir/name`; its path.
pub fn gzip_archive(dir: &std::path::Path, name: &str, layer: &[u8]) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, layer).unwrap();
    let save = super::build::save_with_stored_layer(gz.finish().unwrap(), layer);
    super::build::put(dir, name, &save.tar())
}

/// A docker-save archive of `layers` (base first) tagged `name`.
pub fn save_of(layers: Vec<Vec<u8>>, name: &str) -> Vec<u8> {
    let mut save = super::build::Save::with_layers(layers, "2024-01-01T00:00:00Z");
    save.manifest[0]["RepoTags"] = serde_json::json!([name]);
    save.tar()
}
