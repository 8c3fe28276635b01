//! A piped input is spooled once: its big entries go to unnamed files next to a
//! directory output, which links them in once verified instead of copying them. The
//! result must be exactly what the same conversion from a file gives, and a layer that
//! does not match its diff_id must still fail with nothing left behind.

use crate::common::build::*;
use crate::common::*;

use std::fs;
use std::io::Write;
use std::path::Path;

/// A docker-save archive with two layers big enough to be spooled to files of their
/// own, and a small one.
fn archive() -> Save {
    let layers = vec![
        layer("random.bin", &Noise(7).bytes(3 << 20)),
        layer("text.txt", &b"spooled once, linked in\n".repeat(200_000)),
        layer("small.txt", b"small\n"),
    ];
    Save::with_layers(layers, "2024-01-01T00:00:00Z")
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn piped_inputs_give_directory_outputs_identical_to_file_inputs() {
    let tmp = tempdir();
    let tar = archive().tar();
    let path = put(tmp.path(), "in.tar", &tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    for transport in ["oci", "dir"] {
        let from_file = tmp.path().join(format!("{transport}-file"));
        ok(&[
            "convert",
            &path,
            &format!("{transport}:{}", s(&from_file)),
            "-q",
        ]);
        for (label, input) in [("plain", &tar), ("gzip", &gz)] {
            let out = tmp.path().join(format!("{transport}-{label}"));
            let result = pipe(
                &["convert", "-", &format!("{transport}:{}", s(&out)), "-q"],
                input,
            );
            assert!(
                result.status.success(),
                "{transport} {label}: {}",
                String::from_utf8_lossy(&result.stderr)
            );
            assert_eq!(
                tree_snapshot(&out),
                tree_snapshot(&from_file),
                "{transport} from a {label} pipe"
            );
            ok(&["verify", s(&out)]);
            // Modes as a file the output writes itself would get.
            use std::os::unix::fs::PermissionsExt;
            for entry in walkdir::WalkDir::new(&out) {
                let entry = entry.unwrap();
                if entry.file_type().is_file() {
                    let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                    let reference = from_file.join(entry.path().strip_prefix(&out).unwrap());
                    let want = fs::metadata(reference).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, want, "{}", entry.path().display());
                }
            }
        }
    }
}

#[test]
fn a_piped_layer_that_is_not_its_diff_id_fails_and_leaves_nothing() {
    let tmp = tempdir();
    let mut tar = archive().tar();
    // Change one byte in the middle of the big random layer's data.
    let pos = tar
        .windows(10)
        .position(|w| w.starts_with(b"random.bin"))
        .expect("the layer's inner entry");
    tar[pos + 4096] ^= 0xff;
    for transport in ["oci", "dir"] {
        let work = tmp.path().join(transport);
        fs::create_dir(&work).unwrap();
        let out = work.join("out");
        let result = pipe(&["convert", "-", &format!("{transport}:{}", s(&out))], &tar);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{transport}: {stderr}");
        assert!(
            stderr.contains("stdin"),
            "{transport}: names the input: {stderr}"
        );
        assert!(
            stderr.contains("diff_id") || stderr.contains("digest"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_eq!(leftovers(&work), Vec::<String>::new(), "{transport}");
    }
}
