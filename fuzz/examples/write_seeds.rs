//! Write the synthetic seeds (documents that fit the trees the docker_manifest and
//! oci_index targets build) into corpus/<target>/. Run from fuzz/:
//! `cargo run --example write_seeds` (seed-corpus.sh does it).

use std::fs;
use std::path::Path;

fn main() {
    for (target, seeds) in [
        ("docker_manifest", dockhand_fuzz::docker_seeds()),
        ("oci_index", dockhand_fuzz::oci_seeds()),
    ] {
        let dir = Path::new("corpus").join(target);
        fs::create_dir_all(&dir).expect("creating the corpus directory");
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("synthetic-{name}.json")), bytes).expect("writing a seed");
        }
    }
    // Whole archives built around the synthetic seeds, for the whole_input target.
    let dir = Path::new("corpus").join("whole_input");
    fs::create_dir_all(&dir).expect("creating the corpus directory");
    let docker = dockhand_fuzz::docker_seeds()
        .into_iter()
        .map(|(n, b)| (format!("docker-{n}"), dockhand_fuzz::docker_tar(&b)));
    let oci = dockhand_fuzz::oci_seeds()
        .into_iter()
        .map(|(n, b)| (format!("oci-{n}"), dockhand_fuzz::oci_tar(&b)));
    for (name, tar) in docker.chain(oci) {
        // Say how far each seed gets, so a seed that stopped fitting its tree shows.
        let outcome = match dockhand_fuzz::read_tar(&tar, &name) {
            Ok(source) => {
                let verified = dockhand::verify(&source.images, &dockhand::NoProgress);
                format!(
                    "{} image(s), {} warning(s), verify: {}",
                    source.images.len(),
                    source.warnings.len(),
                    verified
                        .map(|_| "ok".to_string())
                        .unwrap_or_else(|e| e.to_string())
                )
            }
            Err(e) => format!("error: {e}"),
        };
        println!("{name}: {outcome}");
        fs::write(dir.join(format!("synthetic-{name}.tar")), tar).expect("writing a seed");
    }
}
