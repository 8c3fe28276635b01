//! One test walks every fixture: valid ones must inspect exactly as the real tools
//! described them (expected.json), verify, and convert to OCI keeping every identity;
//! broken ones must fail with exit 1, the expected message, and leave nothing behind.

use crate::common::*;

#[test]
fn every_fixture_behaves_as_expected() {
    let mut checked = 0;
    for f in fixtures() {
        if f.is_broken() {
            check_broken(&f);
        } else {
            check_valid(&f);
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

/// An inspect document without the fields added after expected.json was fixed
/// (`by_id`, `index_referrers`, per image `created`, `config_summary`, `referrers`
/// (which no fixture has: checked here), `parent`, `children` and `head` (checked by
/// store.rs), per layer `chain_id`): every other field must stay exactly as
/// expected.json has it, and no other field appear.
fn without_additions(mut doc: serde_json::Value) -> serde_json::Value {
    doc.as_object_mut().unwrap().remove("by_id");
    let index_referrers = doc.as_object_mut().unwrap().remove("index_referrers");
    assert!(
        index_referrers
            .as_ref()
            .and_then(|r| r.as_array())
            .is_none_or(|r| r.is_empty()),
        "{index_referrers:?}"
    );
    for image in doc["images"].as_array_mut().unwrap() {
        let image = image.as_object_mut().unwrap();
        image.remove("created");
        image.remove("config_summary");
        for family in ["parent", "children", "head"] {
            assert!(image.remove(family).is_some(), "no {family}");
        }
        let referrers = image.remove("referrers");
        assert!(
            referrers
                .as_ref()
                .and_then(|r| r.as_array())
                .is_none_or(|r| r.is_empty()),
            "{referrers:?}"
        );
        for layer in image["layers"].as_array_mut().unwrap() {
            layer.as_object_mut().unwrap().remove("chain_id");
        }
    }
    doc
}

fn check_valid(f: &Fixture) {
    let got = without_additions(inspect(f.input()));
    assert_eq!(
        got, f.expected,
        "inspect --json of fixture {} differs from expected.json",
        f.name
    );
    ok(&["verify", f.input()]);
    let tmp = tempdir();
    let out = tmp.path().join("oci");
    let out = out.to_str().unwrap();
    ok(&["convert", f.input(), out]);
    let converted = inspect(out);
    assert_eq!(converted["format"], "oci", "{}", f.name);
    assert_eq!(
        identity(&converted),
        identity(&f.expected),
        "fixture {}: OCI output lost an identity",
        f.name
    );
    ok(&["verify", out]);
}

fn check_broken(f: &Fixture) {
    let want = f.expected["error"].as_str().unwrap().to_lowercase();
    let tmp = tempdir();
    let dest = tmp.path().join("out");
    let dest_tar = tmp.path().join("out.tar");
    for args in [
        vec!["verify", f.input()],
        vec!["convert", f.input(), dest.to_str().unwrap()],
        vec!["convert", f.input(), dest_tar.to_str().unwrap()],
    ] {
        let stderr = fails(&args);
        assert!(
            stderr.to_lowercase().contains(&want),
            "fixture {}: {args:?} should mention {want:?}, got: {stderr}",
            f.name
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one error line expected: {stderr}"
        );
        assert!(
            stderr.contains(f.input()),
            "the error should name the input: {stderr}"
        );
    }
    assert!(
        !dest.exists() && !dest_tar.exists(),
        "fixture {}: a destination was left behind",
        f.name
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "fixture {}: staging files left behind: {left:?}",
        f.name
    );
}
