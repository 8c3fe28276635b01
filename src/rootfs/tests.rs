//! The engine on layers built byte by byte: what each layer shape gives (as Docker's
//! extraction into the parent's filesystem gives it), and what is refused.

use std::collections::BTreeMap;
use std::io::Read;

use super::tar_stream::pax_record;
use super::*;
use crate::progress::NoProgress;

/// One entry of a hand-made layer: names and link targets written as given.
enum E<'a> {
    /// A regular file of mode 0644.
    F(&'a str, &'a [u8]),
    /// A regular file of this mode.
    Fm(&'a str, &'a [u8], u32),
    /// A directory of mode 0755.
    D(&'a str),
    /// A directory of this mode.
    Dm(&'a str, u32),
    /// A symlink.
    S(&'a str, &'a str),
    /// A hard link.
    H(&'a str, &'a str),
    /// A header of this type flag, with this name and size claimed (no data).
    Raw(u8, &'a str, u64),
    /// PAX records for the next entry.
    Pax(Vec<(&'a str, Vec<u8>)>),
}

use E::*;

fn header(flag: u8, name: &[u8], link: &[u8], size: u64, mode: u32) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(1000);
    h.set_gid(100);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name);
    old.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    *h.as_bytes()
}

fn push(out: &mut Vec<u8>, h: [u8; 512], data: &[u8]) {
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A layer tar of `entries`.
fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            F(n, d) => push(
                &mut out,
                header(b'0', n.as_bytes(), b"", d.len() as u64, 0o644),
                d,
            ),
            Fm(n, d, m) => push(
                &mut out,
                header(b'0', n.as_bytes(), b"", d.len() as u64, *m),
                d,
            ),
            D(n) => push(&mut out, header(b'5', n.as_bytes(), b"", 0, 0o755), &[]),
            Dm(n, m) => push(&mut out, header(b'5', n.as_bytes(), b"", 0, *m), &[]),
            S(n, t) => push(
                &mut out,
                header(b'2', n.as_bytes(), t.as_bytes(), 0, 0o777),
                &[],
            ),
            H(n, t) => push(
                &mut out,
                header(b'1', n.as_bytes(), t.as_bytes(), 0, 0o644),
                &[],
            ),
            Raw(flag, n, size) => push(
                &mut out,
                header(*flag, n.as_bytes(), b"", *size, 0o644),
                &[],
            ),
            Pax(records) => {
                let data: Vec<u8> = records
                    .iter()
                    .flat_map(|(k, v)| pax_record(k.as_bytes(), v))
                    .collect();
                push(
                    &mut out,
                    header(b'x', b"pax", b"", data.len() as u64, 0o644),
                    &data,
                );
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An image of these layers (base first), each stored uncompressed in memory, its
/// errors naming `test.tar`.
fn image(layers: &[Vec<u8>]) -> Image {
    check::image_of(layers, "test.tar")
}

/// What an export tar holds: name -> (type, link name, data, mode), in its order.
type Listing = Vec<(String, char, String, Vec<u8>, u32)>;

fn export_of(layers: &[Vec<u8>]) -> Result<Listing> {
    let mut out = Vec::new();
    export_image(&image(layers), &mut out, &NoProgress)?;
    let mut listing = Vec::new();
    let mut archive = tar::Archive::new(&out[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type().as_byte() as char;
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mode = entry.header().mode().unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        listing.push((name, kind, link, data, mode));
    }
    Ok(listing)
}

/// The export as `name -> what`: a file's content, `-> target` for a symlink,
/// `=> target` for a hard link, `dir` for a directory.
fn tree(layers: &[Vec<u8>]) -> BTreeMap<String, String> {
    let listing = export_of(layers).unwrap();
    let mut tree = BTreeMap::new();
    for (name, kind, link, data, _) in listing {
        let what = match kind {
            '5' => "dir".to_string(),
            '2' => format!("-> {link}"),
            '1' => format!("=> {link}"),
            _ => String::from_utf8_lossy(&data).into_owned(),
        };
        assert!(tree.insert(name.clone(), what).is_none(), "{name} twice");
    }
    tree
}

fn expect(layers: &[Vec<u8>], expected: &[(&str, &str)]) {
    let got = tree(layers);
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// The error applying these layers gives, as one line.
fn refused(layers: &[Vec<u8>]) -> String {
    let err = apply_layers(&image(layers), &ApplyOptions::default(), &NoProgress).unwrap_err();
    assert_eq!(err.input(), Some("test.tar"), "{err}");
    assert!(
        matches!(err.without_input(), Error::BadLayer { .. }),
        "not a BadLayer: {err:?}"
    );
    // Exporting refuses it the same way, writing no end marker.
    let mut out = Vec::new();
    let again = export_image(&image(layers), &mut out, &NoProgress).unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert!(
        out.is_empty(),
        "the first pass refuses before anything is written"
    );
    err.to_string()
}

#[test]
fn a_whiteout_deletes_a_path_and_all_under_it_from_the_layers_below() {
    let base = tar(&[
        D("a/"),
        F("a/keep", b"k"),
        F("a/gone", b"g"),
        D("a/sub/"),
        F("a/sub/x", b"x"),
    ]);
    let top = tar(&[F("a/.wh.gone", b""), F("a/.wh.sub", b"")]);
    expect(&[base, top], &[("a/", "dir"), ("a/keep", "k")]);
}

#[test]
fn a_whiteout_applies_to_the_layers_below_only_wherever_it_sits_in_its_tar() {
    let base = tar(&[F("f", b"old"), D("d/"), F("d/old", b"o")]);
    // The new file and directory come before and after their whiteouts.
    let top = tar(&[
        F("f", b"new"),
        F(".wh.f", b""),
        F(".wh.d", b""),
        D("d/"),
        F("d/new", b"n"),
    ]);
    expect(&[base, top], &[("f", "new"), ("d/", "dir"), ("d/new", "n")]);
}

#[test]
fn an_opaque_directory_hides_what_the_layers_below_put_in_it() {
    let base = tar(&[
        D("a/"),
        F("a/x", b"x"),
        D("a/b/"),
        F("a/b/y", b"y"),
        F("z", b"z"),
    ]);
    // The marker after the layer's own entries in the directory: they stay.
    let mid = tar(&[D("a/"), F("a/b/c", b"c"), F("a/.wh..wh..opq", b"")]);
    let top = tar(&[F("a/w", b"w")]);
    expect(
        &[base, mid, top],
        &[
            ("a/", "dir"),
            ("a/b/", "dir"),
            ("a/b/c", "c"),
            ("a/w", "w"),
            ("z", "z"),
        ],
    );
}

#[test]
fn an_opaque_marker_at_the_top_hides_every_layer_below() {
    let base = tar(&[F("x", b"x"), D("d/"), F("d/y", b"y")]);
    let top = tar(&[F(".wh..wh..opq", b""), F("n", b"n")]);
    expect(&[base, top], &[("n", "n")]);
}

#[test]
fn a_file_replaced_by_a_directory_and_a_directory_by_a_file() {
    let base = tar(&[
        F("was-file", b"f"),
        D("was-dir/"),
        F("was-dir/inner", b"i"),
        D("was-dir/deep/"),
    ]);
    let top = tar(&[
        D("was-file/"),
        F("was-file/inside", b"in"),
        F("was-dir", b"now a file"),
    ]);
    expect(
        &[base, top],
        &[
            ("was-dir", "now a file"),
            ("was-file/", "dir"),
            ("was-file/inside", "in"),
        ],
    );
}

#[test]
fn a_directory_over_a_directory_takes_its_attributes_and_keeps_its_children() {
    let base = tar(&[Dm("d/", 0o700), F("d/low", b"l")]);
    let top = tar(&[Dm("d/", 0o750), F("d/high", b"h")]);
    let listing = export_of(&[base, top]).unwrap();
    let modes: BTreeMap<&str, u32> = listing.iter().map(|e| (e.0.as_str(), e.4)).collect();
    assert_eq!(modes["d/"], 0o750);
    assert!(modes.contains_key("d/low") && modes.contains_key("d/high"));
}

#[test]
fn a_symlink_retargeted_and_a_mode_changed() {
    let base = tar(&[S("link", "a"), Fm("bin", b"same", 0o644)]);
    let top = tar(&[S("link", "b"), Fm("bin", b"same", 0o755)]);
    let listing = export_of(&[base, top]).unwrap();
    assert_eq!(listing[0].0, "link");
    assert_eq!(listing[0].2, "b");
    assert_eq!((listing[1].0.as_str(), listing[1].4), ("bin", 0o755));
}

#[test]
fn a_hard_link_whose_target_a_higher_layer_replaces_carries_the_old_content() {
    let base = tar(&[F("t", b"old"), H("h", "t"), H("h2", "t")]);
    let top = tar(&[F("t", b"new")]);
    // h carries the old file (it is shown first), h2 links to it.
    expect(&[base, top], &[("h", "old"), ("h2", "=> h"), ("t", "new")]);
}

#[test]
fn hard_links_whose_target_is_deleted_keep_the_file_under_their_names() {
    let base = tar(&[
        D("lib/"),
        F("lib/t", b"T"),
        H("lib/b", "lib/t"),
        H("lib/a", "lib/t"),
    ]);
    let top = tar(&[F("lib/.wh.t", b"")]);
    expect(
        &[base, top],
        &[("lib/", "dir"), ("lib/a", "T"), ("lib/b", "=> lib/a")],
    );
}

#[test]
fn hard_links_to_a_visible_file_stay_links_and_links_to_links_share_it() {
    let base = tar(&[F("t", b"T"), H("l1", "t"), H("l2", "l1"), F("other", b"o")]);
    expect(
        &[base],
        &[("t", "T"), ("l1", "=> t"), ("l2", "=> t"), ("other", "o")],
    );
}

#[test]
fn a_hard_link_to_a_file_of_a_lower_layer_is_that_file() {
    let base = tar(&[F("t", b"T"), F("u", b"U")]);
    let mid = tar(&[H("x", "t"), H("y", "x"), H("z", "u")]);
    // u is replaced above: z keeps the file it linked to.
    let top = tar(&[F("u", b"U2")]);
    expect(
        &[base, mid, top],
        &[
            ("t", "T"),
            ("u", "U2"),
            ("x", "=> t"),
            ("y", "=> t"),
            ("z", "U"),
        ],
    );
}

#[test]
fn a_hard_link_to_what_its_layer_cannot_reach_is_refused() {
    // Deleted by a layer in between.
    let base = tar(&[F("t", b"T")]);
    let mid = tar(&[F(".wh.t", b"")]);
    let top = tar(&[H("x", "t")]);
    let err = refused(&[base.clone(), mid, top.clone()]);
    assert!(
        err.contains("layer 3 (l2): entry x: ") && err.contains("layer 2 deletes"),
        "{err}"
    );
    // Deleted by its own layer (whiteouts apply first).
    let err = refused(&[base.clone(), tar(&[H("x", "t"), F(".wh.t", b"")])]);
    assert!(
        err.contains("entry x: ") && err.contains("its own layer deletes"),
        "{err}"
    );
    // Held by no layer.
    let err = refused(&[base.clone(), tar(&[H("x", "nothing")])]);
    assert!(
        err.contains("neither its layer nor any below it holds"),
        "{err}"
    );
    // A directory, in its layer or below.
    let err = refused(&[tar(&[D("d/"), H("x", "d")])]);
    assert!(err.contains("hard link to the directory d"), "{err}");
    let err = refused(&[tar(&[D("d/")]), tar(&[H("x", "d")])]);
    assert!(err.contains("a directory in layer 1"), "{err}");
    // Out of the root.
    let err = refused(&[tar(&[H("x", "a/../../etc/passwd")])]);
    assert!(err.contains("climbing out of the root"), "{err}");
}

#[test]
fn hostile_names_and_whiteouts_are_refused_naming_the_image_layer_and_entry() {
    let cases: &[(&[E], &str)] = &[
        (&[F("../escape", b"x")], "climbs out of the root"),
        (&[F("a/../../escape", b"x")], "climbs out of the root"),
        (&[F(".wh...", b"")], "a whiteout of no nameable file"),
        (&[F("a/.wh...", b"")], "a whiteout of no nameable file"),
        (&[F("a/.wh..", b"")], "a whiteout of no nameable file"),
        (&[F(".wh.", b"")], "a whiteout of no nameable file"),
        (&[F("f", b"x"), F("f/under", b"y")], "lies under f"),
        (&[S("s", "/"), F("s/under", b"y")], "lies under s"),
        (&[Raw(b'S', "sparse", 0)], "sparse file"),
        (&[Raw(b'V', "volume", 0)], "is no file, directory"),
    ];
    for (entries, needle) in cases {
        let err = refused(&[tar(&[F("fine", b"ok")]), tar(entries)]);
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.starts_with("test.tar: image "), "{err}");
        assert!(err.contains(": layer 2 (l1): entry "), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn absurd_sizes_and_malformed_tars_fail_without_allocating() {
    // A header claiming 2^62 bytes: the layer ends first.
    let mut layer = tar(&[Raw(b'0', "huge", 1 << 62)]);
    layer.truncate(1024);
    let err = refused(&[layer]);
    assert!(err.contains("truncated"), "{err}");
    // A PAX size far past the data.
    let err = refused(&[tar(&[
        Pax(vec![("size", b"99999999999999".to_vec())]),
        F("x", b""),
    ])]);
    assert!(err.contains("truncated"), "{err}");
    // An extension header over its cap is refused before it is read.
    let mut layer = tar(&[Raw(b'x', "pax", 1 << 40)]);
    layer.truncate(512);
    let err = refused(&[layer]);
    assert!(err.contains("over the limit"), "{err}");
    // Not a tar at all.
    let err = refused(&[b"definitely not a tar archive, just text".repeat(20)]);
    assert!(err.contains("not a tar archive"), "{err}");
}

#[test]
fn the_caps_on_paths_and_entries_hold() {
    let mut engine = apply::Engine::new(1, false).with_max_paths(5);
    let layer = tar(&[F("a", b""), F("b", b""), F("c/d/e/f", b"")]);
    let mut entries = TarEntries::new(&layer[..], 100);
    let Err(ScanError::Refused(r)) = engine.layer(0, &mut entries) else {
        panic!("not refused")
    };
    assert!(r.problem.contains("more than 5 paths"), "{}", r.problem);
    let mut entries = TarEntries::new(&layer[..], 2);
    let third = (0..3).try_for_each(|_| entries.next_entry().map(|_| ()));
    let Err(TarProblem::Malformed { problem, .. }) = third else {
        panic!("not refused")
    };
    assert!(problem.contains("more than 2 entries"), "{problem}");
}

#[test]
fn directories_only_implied_show_as_root_owned_0755_with_no_time() {
    let base = tar(&[F("x/y/z", b"z"), F("top", b"t")]);
    let listing = export_of(std::slice::from_ref(&base)).unwrap();
    let names: Vec<&str> = listing.iter().map(|e| e.0.as_str()).collect();
    // The parents come first, top down.
    assert_eq!(names, ["x/", "x/y/", "x/y/z", "top"]);
    assert_eq!((listing[0].1, listing[0].4), ('5', 0o755));
    let fs = apply_layers(&image(&[base]), &ApplyOptions::default(), &NoProgress).unwrap();
    let x = fs.get("x/y").unwrap();
    assert_eq!(
        (x.kind(), x.layer(), x.mtime(), x.uid()),
        (FsKind::Dir, None, 0, 0)
    );
    // A directory implied above hides a file below, as overlayfs shows it.
    let low = tar(&[F("a", b"file")]);
    let high = tar(&[F("a/b", b"b")]);
    expect(&[low.clone(), high], &[("a/", "dir"), ("a/b", "b")]);
    // Even with nothing of it shown: a whiteout inside implies the directory too.
    expect(&[low, tar(&[F("a/.wh.b", b"")])], &[("a/", "dir")]);
}

#[test]
fn within_a_layer_the_last_entry_of_a_name_wins() {
    let layer = tar(&[
        D("d/"),
        F("d/x", b"x"),
        F("d", b"file now"),
        F("f", b"1"),
        F("f", b"2"),
    ]);
    expect(&[layer], &[("d", "file now"), ("f", "2")]);
}

#[test]
fn absolute_names_and_link_targets_are_read_from_the_root_as_docker_reads_them() {
    // kaniko names the root `/`; Docker reads `/etc/passwd` as `etc/passwd`.
    let layer = tar(&[
        Dm("/", 0o700),
        F("/etc/passwd", b"p"),
        H("/etc/again", "/etc/passwd"),
    ]);
    expect(
        &[layer],
        &[
            ("etc/", "dir"),
            ("etc/again", "=> etc/passwd"),
            ("etc/passwd", "p"),
        ],
    );
}

#[test]
fn root_entries_and_dot_slash_names_are_normalized() {
    let layer = tar(&[
        Dm("./", 0o700),
        D("./etc/"),
        F("./etc//passwd", b"p"),
        F("a/../b", b"b"),
    ]);
    expect(
        &[layer],
        &[("b", "b"), ("etc/", "dir"), ("etc/passwd", "p")],
    );
}

#[test]
fn entries_carry_their_metadata_and_digests() {
    let xattr_and_owner = || {
        Pax(vec![
            ("SCHILY.xattr.user.note", b"kept".to_vec()),
            ("uid", b"4242".to_vec()),
        ])
    };
    let base = tar(&[
        xattr_and_owner(),
        Fm("f", b"content", 0o4755),
        xattr_and_owner(),
        Fm("t", b"linked", 0o4755),
        // Its own header: mode 0644, owner 1000:100.
        H("g", "t"),
        Raw(b'3', "dev/null", 0),
        Raw(b'6', "fifo", 0),
        S("s", "target"),
    ]);
    let options = ApplyOptions {
        content_digests: true,
    };
    let fs = apply_layers(
        &image(&[base.clone(), tar(&[F(".wh.t", b"")])]),
        &options,
        &NoProgress,
    )
    .unwrap();
    let f = fs.get("f").unwrap();
    assert_eq!(f.kind(), FsKind::File);
    assert_eq!(
        (f.mode(), f.uid(), f.gid(), f.size(), f.mtime()),
        (0o4755, 4242, 100, 7, 1_700_000_000)
    );
    assert_eq!(f.digest(), Some(&Digest::of(b"content")));
    // A hard link's own header sets its file's mode and owner when it is extracted
    // (Docker's and containerd's extraction do so): g, its file's last link.
    let g = fs.get("g").unwrap();
    assert_eq!(
        (g.kind(), g.mode(), g.uid(), g.gid(), g.size()),
        (FsKind::File, 0o644, 1000, 100, 6)
    );
    assert_eq!(g.digest(), Some(&Digest::of(b"linked")));
    assert_eq!((g.hard_link(), g.layer()), (None, Some(0)));
    assert!(fs.get("t").is_none());
    assert_eq!(fs.get("dev/null").unwrap().kind(), FsKind::CharDevice);
    assert_eq!(fs.get("fifo").unwrap().kind(), FsKind::Fifo);
    assert_eq!(
        fs.get("s").unwrap().symlink_target().as_deref(),
        Some("target")
    );
    assert_eq!(fs.get("dev").unwrap().layer(), None);
    // The export keeps the PAX records: f's extended attribute and uid; t's extended
    // attribute, its uid replaced by its link's header.
    let mut out = Vec::new();
    export_image(&image(&[base]), &mut out, &NoProgress).unwrap();
    let mut archive = tar::Archive::new(&out[..]);
    let mut records = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let uid = entry.header().uid().unwrap();
        let pax: Vec<(String, Vec<u8>)> = match entry.pax_extensions().unwrap() {
            Some(pax) => pax
                .map(|r| r.unwrap())
                .map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec()))
                .collect(),
            None => Vec::new(),
        };
        records.insert(name, (uid, pax));
    }
    let note = ("SCHILY.xattr.user.note".to_string(), b"kept".to_vec());
    let owner = ("uid".to_string(), b"4242".to_vec());
    assert_eq!(records["f"].1, vec![note.clone(), owner]);
    assert_eq!(records["t"], (1000, vec![note.clone()]));
    assert_eq!(records["g"], (1000, vec![note]));
}

#[test]
fn long_and_non_utf8_names_round_trip() {
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
    let target = "t".repeat(200);
    let layer = tar(&[
        Pax(vec![("path", long.clone().into_bytes())]),
        F("ignored", b"L"),
        Pax(vec![("path", b"caf\xe9".to_vec())]),
        F("ignored", b"latin1"),
        Pax(vec![
            ("path", b"s".to_vec()),
            ("linkpath", target.clone().into_bytes()),
        ]),
        S("ignored", "x"),
    ]);
    let mut out = Vec::new();
    export_image(&image(&[layer]), &mut out, &NoProgress).unwrap();
    let mut archive = tar::Archive::new(&out[..]);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        found.push((entry.path_bytes().into_owned(), link));
    }
    assert!(found.contains(&(long.into_bytes(), None)), "{found:?}");
    assert!(found.contains(&(b"caf\xe9".to_vec(), None)), "{found:?}");
    assert!(
        found.contains(&(b"s".to_vec(), Some(target.into_bytes()))),
        "{found:?}"
    );
}

#[test]
fn the_export_is_deterministic_and_each_path_is_written_once() {
    let base = tar(&[
        D("a/"),
        F("a/1", b"1"),
        F("t", b"T"),
        H("h", "t"),
        F("a/b/c", b"c"),
    ]);
    let top = tar(&[F("t", b"T2"), D("a/"), F("a/.wh.1", b""), F("z/y", b"zy")]);
    let layers = [base, top];
    let first = {
        let mut out = Vec::new();
        export_image(&image(&layers), &mut out, &NoProgress).unwrap();
        out
    };
    let mut second = Vec::new();
    let report = export_image(&image(&layers), &mut second, &NoProgress).unwrap();
    assert_eq!(first, second);
    assert_eq!(report.bytes, first.len() as u64);
    let listing = export_of(&layers).unwrap();
    assert_eq!(report.entries, listing.len());
    let mut names: Vec<&String> = listing.iter().map(|e| &e.0).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), listing.len());
}

#[test]
fn a_filesystem_exports_only_from_its_own_image() {
    let one = image(&[tar(&[F("a", b"a")])]);
    let other = image(&[tar(&[F("b", b"b")])]);
    let fs = apply_layers(&one, &ApplyOptions::default(), &NoProgress).unwrap();
    let err = export_filesystem(&other, &fs, Vec::new(), &NoProgress).unwrap_err();
    assert!(err.is_usage(), "{err}");
}

/// The engine against the naive model of `check.rs`, on many generated images: both
/// refuse the same ones and agree on every path of the others.
#[test]
fn the_engine_agrees_with_a_naive_model_on_generated_layers() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = 1 + (next() % 60) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8 & 0x7f).collect();
        check::check(&data);
    }
}
