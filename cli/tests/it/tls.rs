//! Registries behind TLS as companies run them: a private CA, client certificates
//! (distribution's `http.tls.clientcas`), and each way a handshake fails. Every
//! certificate is made here with `openssl`, in the test's own temp dir; the registry is
//! Debian's `docker-registry` on 127.0.0.1 serving HTTPS.

use crate::common::registry::*;
use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A private PKI in a temp dir: a CA, certificates it issues, a client CA and its
/// client pair.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA (`ca.crt`), a server certificate for 127.0.0.1 (`server.crt`), a client CA
    /// (`client-ca.crt`) and a client pair (`client.cert`, `client.key`). `None` (after
    /// a SKIPPED line) without openssl.
    fn new() -> Option<Pki> {
        if !have_tool(&test_name(), "openssl") {
            return None;
        }
        let pki = Pki { dir: tempdir() };
        pki.ca("ca");
        pki.ca("client-ca");
        pki.issue(
            "ca",
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.issue("client-ca", "client", "extendedKeyUsage=clientAuth\n");
        std::fs::rename(pki.path("client.crt"), pki.path("client.cert")).unwrap();
        Some(pki)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A self-signed CA `NAME.crt` with its key `NAME.key`.
    fn ca(&self, name: &str) {
        let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN=dockhand test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ]);
    }

    /// A key `NAME.key` and a request `NAME.csr`.
    fn request(&self, name: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN=dockhand test {name}"),
        ]);
    }

    /// `NAME.crt` (and `NAME.key`) issued by CA `ca`, with the extensions `ext`.
    fn issue(&self, ca: &str, name: &str, ext: &str) {
        self.request(name);
        std::fs::write(self.path(&format!("{name}.ext")), ext).unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }

    /// `NAME.crt` issued by `ca` for 127.0.0.1, valid only on 2020-01-01: `openssl ca`
    /// takes explicit dates, which `x509 -req` (OpenSSL 3.0) does not.
    fn issue_expired(&self, ca: &str, name: &str) {
        self.request(name);
        std::fs::write(
            self.path("expired-ca.cnf"),
            "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n\
             default_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n\
             [p]\ncommonName=supplied\n[e]\nsubjectAltName=IP:127.0.0.1\n",
        )
        .unwrap();
        std::fs::write(self.path("index.txt"), "").unwrap();
        std::fs::write(self.path("serial"), "1000\n").unwrap();
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "expired-ca.cnf",
            "-extensions",
            "e",
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.crt"),
            "-notext",
            "-cert",
            &format!("{ca}.crt"),
            "-keyfile",
            &format!("{ca}.key"),
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ]);
    }

    /// The registry serves `NAME.crt` with `NAME.key`, requiring client certificates
    /// of the client CA when `mutual`.
    fn serving(&self, name: &str, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path(&format!("{name}.crt")),
            key: self.path(&format!("{name}.key")),
            client_cas: mutual.then(|| self.path("client-ca.crt")),
        }
    }

    /// A cert dir (in the PKI's dir) holding copies of `files` (`(name in the PKI,
    /// name in the dir)`).
    fn cert_dir(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (from, to) in files {
            std::fs::copy(self.path(from), dir.join(to)).unwrap();
        }
        dir
    }
}

/// A registry serving `tls`; `None` when a tool is missing (after a SKIPPED line).
fn registry(tls: TlsFiles) -> Option<RegistryFixture> {
    RegistryFixture::builder().tls(tls).start()
}

fn run(tmp: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = isolated_dockhand(tmp, args);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running dockhand")
}

/// Push the basic fixture to `remote` and pull it back into an OCI layout, with
/// `extra` arguments and `env`; both must succeed and the image be the fixture's.
fn push_and_pull(tmp: &Path, remote: &str, extra: &[&str], env: &[(&str, &Path)]) {
    let f = fixture("docker-save-basic");
    let mut push = vec!["convert", "-q"];
    push.extend_from_slice(extra);
    push.extend([f.input(), remote]);
    let out = run(tmp, &push, env);
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = tmp.join(format!("pulled-{}", sha256(remote.as_bytes())));
    let mut pull = vec!["convert", "-q", "--to", "oci"];
    pull.extend_from_slice(extra);
    pull.extend([remote, s(&dest)]);
    let out = run(tmp, &pull, env);
    assert!(
        out.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(config_digests(&inspect(s(&dest))), f.config_digests());
    ok(&["verify", s(&dest)]);
}

/// Pulling `remote` with `extra` fails with exit code 1 and one error line, which is
/// returned.
fn pull_fails(tmp: &Path, remote: &str, extra: &[&str], env: &[(&str, &Path)]) -> String {
    let dest = tmp.join("never");
    let mut args = vec!["convert", "-q", "--to", "oci"];
    args.extend_from_slice(extra);
    args.extend([remote, s(&dest)]);
    let out = run(tmp, &args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dest.exists());
    stderr
}

#[test]
fn a_private_ca_is_trusted_through_cert_dir() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let certs = pki.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    push_and_pull(
        fx.dir(),
        &fx.remote("trust/cert-dir:1"),
        &["--cert-dir", s(&certs)],
        &[],
    );
}

#[test]
fn a_private_ca_is_trusted_through_ssl_cert_file() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let ca = pki.path("ca.crt");
    push_and_pull(
        fx.dir(),
        &fx.remote("trust/env:1"),
        &[],
        &[("SSL_CERT_FILE", &ca)],
    );
}

/// `/etc/docker/certs.d/127.0.0.1:PORT/`, created for one registry and removed (with
/// `certs.d` itself when this made it) on drop.
struct CertsD {
    folder: PathBuf,
    made_parent: bool,
}

impl CertsD {
    fn create(addr: &str) -> CertsD {
        let parent = Path::new("/etc/docker/certs.d");
        let made_parent = !parent.exists();
        let folder = parent.join(addr);
        std::fs::create_dir_all(&folder)
            .unwrap_or_else(|e| panic!("creating {} (the test needs root): {e}", folder.display()));
        CertsD {
            folder,
            made_parent,
        }
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
        if self.made_parent {
            let _ = std::fs::remove_dir(self.folder.parent().unwrap());
        }
    }
}

#[test]
fn a_private_ca_and_client_pair_are_found_in_docker_certs_d() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", true)) else {
        return;
    };
    let folder = CertsD::create(&fx.registry.addr);
    for (from, to) in [
        ("ca.crt", "ca.crt"),
        ("client.cert", "client.cert"),
        ("client.key", "client.key"),
    ] {
        std::fs::copy(pki.path(from), folder.folder.join(to)).unwrap();
    }
    push_and_pull(fx.dir(), &fx.remote("trust/certs-d:1"), &[], &[]);
    drop(folder);
    // Without the folder the same pull is refused: the certs.d folder did the work.
    let err = pull_fails(fx.dir(), &fx.remote("trust/certs-d:1"), &[], &[]);
    assert!(err.contains("does not trust"), "{err}");
}

#[test]
fn mutual_tls_works_with_a_client_pair_and_says_what_is_missing_without() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", true)) else {
        return;
    };
    let with_pair = pki.cert_dir(
        "with-pair",
        &[
            ("ca.crt", "ca.crt"),
            ("client.cert", "client.cert"),
            ("client.key", "client.key"),
        ],
    );
    let remote = fx.remote("trust/mtls:1");
    push_and_pull(fx.dir(), &remote, &["--cert-dir", s(&with_pair)], &[]);

    let ca_only = pki.cert_dir("ca-only", &[("ca.crt", "ca.crt")]);
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&ca_only)], &[]);
    assert!(
        err.contains(&format!(
            "registry {}: it asks for a client certificate: put NAME.cert and NAME.key in \
             /etc/docker/certs.d/{}/",
            fx.registry.addr, fx.registry.addr
        )) && err.contains("--cert-dir"),
        "{err}"
    );

    // A pair the registry's client CA did not issue (the server's own) is refused.
    let wrong = pki.cert_dir(
        "wrong-pair",
        &[
            ("ca.crt", "ca.crt"),
            ("server.crt", "other.cert"),
            ("server.key", "other.key"),
        ],
    );
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&wrong)], &[]);
    assert!(err.contains("refused the client certificate"), "{err}");
    assert!(err.contains("other.cert"), "{err}");
}

#[test]
fn an_unknown_issuer_names_where_the_ca_goes() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let addr = &fx.registry.addr;
    let err = pull_fails(fx.dir(), &fx.remote("trust/unknown:1"), &[], &[]);
    assert!(
        err.contains(&format!(
            "registry {addr}: its certificate is signed by a CA this machine does not trust: \
             put that CA's certificate in /etc/docker/certs.d/{addr}/ca.crt"
        )),
        "{err}"
    );
    assert!(err.contains("--cert-dir"), "{err}");
    assert!(err.contains("--tls-verify=false"), "{err}");
    // Refused at once: a certificate is not retried.
    assert!(!err.contains("tries"), "{err}");
    // And --tls-verify=false does skip the check.
    push_and_pull(
        fx.dir(),
        &fx.remote("trust/unknown:1"),
        &["--tls-verify=false"],
        &[],
    );
}

#[test]
fn a_ca_served_as_the_registry_certificate_is_named_so() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("ca", false)) else {
        return;
    };
    let certs = pki.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    let err = pull_fails(
        fx.dir(),
        &fx.remote("trust/ca:1"),
        &["--cert-dir", s(&certs)],
        &[],
    );
    assert!(
        err.contains("it presents a CA certificate as its own: give the registry a certificate issued by that CA"),
        "{err}"
    );
}

#[test]
fn a_certificate_for_another_name_says_which_names_it_has() {
    let Some(pki) = Pki::new() else { return };
    pki.issue(
        "ca",
        "other-name",
        "subjectAltName=DNS:registry.example\nextendedKeyUsage=serverAuth\n",
    );
    let Some(fx) = registry(pki.serving("other-name", false)) else {
        return;
    };
    let certs = pki.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    let err = pull_fails(
        fx.dir(),
        &fx.remote("trust/name:1"),
        &["--cert-dir", s(&certs)],
        &[],
    );
    assert!(
        err.contains("its certificate is for registry.example, not for 127.0.0.1"),
        "{err}"
    );
}

#[test]
fn an_expired_certificate_says_when_it_expired() {
    let Some(pki) = Pki::new() else { return };
    pki.issue_expired("ca", "expired");
    let Some(fx) = registry(pki.serving("expired", false)) else {
        return;
    };
    let certs = pki.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    let err = pull_fails(
        fx.dir(),
        &fx.remote("trust/old:1"),
        &["--cert-dir", s(&certs)],
        &[],
    );
    assert!(
        err.contains("its certificate expired on Thu, 02 Jan 2020 00:00:00 GMT"),
        "{err}"
    );
}

#[test]
fn a_plain_http_registry_reached_over_tls_says_to_use_plain_http() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let err = pull_fails(fx.dir(), &fx.remote("trust/plain:1"), &[], &[]);
    assert!(
        err.contains(&format!(
            "registry {}: it speaks plain HTTP, not HTTPS; add --tls-verify=false to use plain HTTP",
            fx.registry.addr
        )),
        "{err}"
    );
}

#[test]
fn bad_certificate_files_are_named() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let remote = fx.remote("trust/files:1");
    let dir = pki.cert_dir("bad-pem", &[]);
    std::fs::write(dir.join("ca.crt"), "not a certificate\n").unwrap();
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&dir)], &[]);
    assert!(
        err.contains(&format!(
            "certificate file {}: holds no PEM certificate",
            s(&dir.join("ca.crt"))
        )),
        "{err}"
    );

    let dir = pki.cert_dir(
        "no-key",
        &[("ca.crt", "ca.crt"), ("client.cert", "client.cert")],
    );
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&dir)], &[]);
    assert!(
        err.contains("a client certificate without its key"),
        "{err}"
    );
    assert!(err.contains(s(&dir.join("client.key"))), "{err}");

    let dir = pki.cert_dir(
        "mismatched",
        &[
            ("ca.crt", "ca.crt"),
            ("client.cert", "client.cert"),
            ("server.key", "client.key"),
        ],
    );
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&dir)], &[]);
    assert!(err.contains("is not the key of"), "{err}");

    let missing = pki.path("no-such-dir");
    let err = pull_fails(fx.dir(), &remote, &["--cert-dir", s(&missing)], &[]);
    assert!(err.contains("the --cert-dir is not a directory"), "{err}");

    let garbage = pki.path("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = pull_fails(fx.dir(), &remote, &[], &[("SSL_CERT_FILE", &garbage)]);
    assert!(err.contains("SSL_CERT_FILE="), "{err}");
}

#[test]
fn each_end_of_a_registry_copy_trusts_its_own_cert_dir() {
    let (Some(pki_a), Some(pki_b)) = (Pki::new(), Pki::new()) else {
        return;
    };
    let Some(a) = registry(pki_a.serving("server", false)) else {
        return;
    };
    let Some(b) = registry(pki_b.serving("server", false)) else {
        return;
    };
    let t = a.dir();
    let certs_a = pki_a.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    let certs_b = pki_b.cert_dir("certs", &[("ca.crt", "ca.crt")]);
    let (from, to) = (a.remote("ends/from:1"), b.remote("ends/to:1"));
    push_and_pull(t, &from, &["--cert-dir", s(&certs_a)], &[]);
    // One cert dir for both ends: the destination, another CA's, is not trusted.
    let out = run(
        t,
        &["convert", "-q", "--cert-dir", s(&certs_a), &from, &to],
        &[],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    // (Both test CAs have the same name: the one trusted did not sign B's certificate.)
    assert!(
        said.contains(&b.registry.addr) && said.contains("but that CA did not sign it"),
        "{said}"
    );
    // Each end its own: the copy works, and B holds the same manifest.
    let copy = [
        "convert",
        "-q",
        "--src-cert-dir",
        s(&certs_a),
        "--dest-cert-dir",
        s(&certs_b),
        &from,
        &to,
    ];
    let out = run(t, &copy, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = |remote: &str, certs: &Path| {
        let out = run(t, &["digest", "--cert-dir", s(certs), remote], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(digest(&from, &certs_a), digest(&to, &certs_b));
}

#[test]
fn a_private_ca_is_found_in_the_users_containers_certs_d() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let t = fx.dir();
    // The private HOME the test's dockhand runs with.
    let folder = t
        .join("home/.config/containers/certs.d")
        .join(&fx.registry.addr);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(pki.path("ca.crt"), folder.join("ca.crt")).unwrap();
    push_and_pull(t, &fx.remote("trust/home:1"), &[], &[]);
    std::fs::remove_dir_all(&folder).unwrap();
    let err = pull_fails(t, &fx.remote("trust/home:1"), &[], &[]);
    assert!(err.contains("does not trust"), "{err}");
}

#[test]
fn an_empty_trust_store_says_so_instead_of_blaming_the_registry() {
    let Some(pki) = Pki::new() else { return };
    let Some(fx) = registry(pki.serving("server", false)) else {
        return;
    };
    let empty_file = pki.path("empty.pem");
    std::fs::write(&empty_file, b"").unwrap();
    let empty_dir = pki.path("empty-dir");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let err = pull_fails(
        fx.dir(),
        &fx.remote("trust/none:1"),
        &[],
        &[("SSL_CERT_FILE", &empty_file), ("SSL_CERT_DIR", &empty_dir)],
    );
    assert!(
        err.contains("the system trust store holds no CA certificates")
            && err.contains("ca-certificates"),
        "{err}"
    );
}
