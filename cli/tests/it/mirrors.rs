//! registries.conf (mirrors, `location`, `insecure`, `blocked`) and proxies from the
//! environment, against real registries on 127.0.0.1: an "origin" and a "mirror",
//! each behind the fixture's request-recording proxy, so that a test can tell which
//! one was asked; and a CONNECT proxy written here, which counts the tunnels it opens.

use crate::common::registry::*;
use crate::common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// dockhand with a private HOME and cache, and no proxy nor registries.conf from the
/// environment.
fn dh_command(tmp: &Path, args: &[&str]) -> Command {
    let mut cmd = isolated_dockhand(tmp, args);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("CONTAINERS_REGISTRIES_CONF");
    cmd
}

fn succeeds(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed: {stderr}");
    stderr
}

/// Exit code 1 and one error line, no panic; returns stderr.
fn fails(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

/// Push the bundled fixture to `docker://ADDR/repo` over plain HTTP.
fn push(tmp: &Path, addr: &str, repo: &str) {
    let dst = format!("docker://{addr}/{repo}");
    let src = fixture("docker-save-basic").input().to_string();
    succeeds(
        dh_command(tmp, &["convert", "-q", "--tls-verify=false", &src, &dst])
            .output()
            .unwrap(),
        &format!("pushing to {dst}"),
    );
}

fn write_conf(tmp: &Path, name: &str, text: &str) -> PathBuf {
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// How many requests the fixture's proxy saw.
fn asked(fx: &RegistryFixture) -> usize {
    fx.proxy().requests().len()
}

/// A port that accepts connections and closes each at once, and the count of them.
fn closing_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (addr, count)
}

#[test]
fn a_pull_is_served_by_the_mirror_and_falls_back_to_the_registry() {
    let Some(origin) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let Some(mirror) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = origin.dir();
    // The mirror holds team/app:1 under the name the origin would serve it; the origin
    // holds only team/other:1.
    push(t, mirror.addr(), "hub/team/app:1");
    push(t, origin.addr(), "team/other:1");
    // Mirrors first that nothing answers at: one refuses connections, one closes
    // each at once (counting them). Both are skipped, each after one attempt (two
    // connections: plain HTTP, then HTTPS), not the retries' (3 by default).
    let dead = format!("127.0.0.1:{}", free_port());
    let (closing, closed) = closing_listener();
    let conf = write_conf(
        t,
        "registries.conf",
        &format!(
            "unqualified-search-registries = []\n\
             [[registry]]\nprefix = \"{o}/team\"\nlocation = \"{o}/team\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{closing}/team\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{dead}/team\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{m}/hub/team\"\ninsecure = true\n",
            o = origin.addr(),
            m = mirror.addr(),
        ),
    );
    origin.proxy().reset_counters();
    mirror.proxy().reset_counters();
    let src = format!("docker://{}/team/app:1", origin.addr());
    let out = t.join("app.tar");
    // --registries-conf, without --tls-verify=false: the mirror's `insecure` allows
    // plain HTTP.
    let stderr = succeeds(
        dh_command(
            t,
            &[
                "-v",
                "convert",
                "--registries-conf",
                s(&conf),
                &src,
                s(&out),
            ],
        )
        .output()
        .unwrap(),
        "pulling through the mirror",
    );
    assert_eq!(asked(&origin), 0, "{:?}", origin.proxy().requests());
    assert!(mirror.proxy().count("GET", "/manifests/1", Some(200)) > 0);
    assert!(
        stderr.contains(&format!(
            "pulled {src} from the mirror docker://{}/hub/team/app:1",
            mirror.addr()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("mirror skipped: docker://") && stderr.contains(&dead),
        "{stderr}"
    );
    assert!(stderr.contains(&closing), "{stderr}");
    let connections = closed.swap(0, Ordering::SeqCst);
    assert!(
        (1..=2).contains(&connections),
        "{connections} connections to a mirror that never answers"
    );
    ok(&["verify", s(&out)]);
    assert_eq!(
        config_digests(&inspect(s(&out))),
        config_digests(&inspect(fixture("docker-save-basic").input()))
    );
    // Without -v, nothing about mirrors is said.
    let quiet_run = succeeds(
        dh_command(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&conf),
                &src,
                s(&t.join("b.tar")),
            ],
        )
        .output()
        .unwrap(),
        "pulling again",
    );
    assert!(!quiet_run.contains("mirror"), "{quiet_run}");
    // CONTAINERS_REGISTRIES_CONF names the file as well.
    mirror.proxy().reset_counters();
    let mut cmd = dh_command(t, &["convert", "-q", &src, s(&t.join("env.tar"))]);
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf);
    succeeds(
        cmd.output().unwrap(),
        "pulling with CONTAINERS_REGISTRIES_CONF",
    );
    assert!(asked(&mirror) > 0);
    assert_eq!(asked(&origin), 0);
    // The mirror lacks team/other:1: the origin serves it.
    mirror.proxy().reset_counters();
    let other = format!("docker://{}/team/other:1", origin.addr());
    let stderr = succeeds(
        dh_command(
            t,
            &[
                "-v",
                "convert",
                "--registries-conf",
                s(&conf),
                &other,
                s(&t.join("o.tar")),
            ],
        )
        .output()
        .unwrap(),
        "falling back to the origin",
    );
    assert!(mirror.proxy().count("GET", "/manifests/1", Some(404)) > 0);
    assert!(origin.proxy().count("GET", "/manifests/1", Some(200)) > 0);
    assert!(!stderr.contains("from the mirror"), "{stderr}");
    assert!(stderr.contains("mirror skipped"), "{stderr}");
    // Nobody has team/none:1: the origin's answer is the error, the mirrors' follow it.
    let err = fails(
        dh_command(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&conf),
                &format!("docker://{}/team/none:1", origin.addr()),
                s(&t.join("none.tar")),
            ],
        )
        .output()
        .unwrap(),
        "pulling what nobody has",
    );
    assert!(err.contains("the mirrors failed too"), "{err}");
    // A push goes to the registry itself, never to a mirror.
    mirror.proxy().reset_counters();
    origin.proxy().reset_counters();
    let src_fixture = fixture("docker-save-basic").input().to_string();
    succeeds(
        dh_command(
            t,
            &[
                "convert",
                "-q",
                "--registries-conf",
                s(&conf),
                &src_fixture,
                &format!("docker://{}/team/pushed:1", origin.addr()),
            ],
        )
        .output()
        .unwrap(),
        "pushing with mirrors configured",
    );
    assert_eq!(asked(&mirror), 0, "{:?}", mirror.proxy().requests());
    assert!(origin.proxy().count("PUT", "/manifests/1", Some(201)) > 0);
}

#[test]
fn insecure_allows_plain_http_and_blocked_refuses() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    push(t, fx.addr(), "a/app:1");
    let basic = fixture("docker-save-basic").input().to_string();
    let src = format!("docker://{}/a/app:1", fx.addr());
    // Without a configuration, a plain-HTTP registry is refused (no loopback exception,
    // as with podman and skopeo).
    fails(
        dh_command(t, &["convert", &src, s(&t.join("x.tar"))])
            .output()
            .unwrap(),
        "plain HTTP without insecure",
    );
    assert!(!t.join("x.tar").exists());
    let insecure = write_conf(
        t,
        "insecure.conf",
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            fx.addr()
        ),
    );
    succeeds(
        dh_command(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&insecure),
                &src,
                s(&t.join("y.tar")),
            ],
        )
        .output()
        .unwrap(),
        "plain HTTP with insecure = true",
    );
    // Listing tags honours it too.
    let out = dh_command(
        t,
        &[
            "tags",
            "--registries-conf",
            s(&insecure),
            &format!("docker://{}/a/app", fx.addr()),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let blocked = write_conf(
        t,
        "blocked.conf",
        &format!(
            "[[registry]]\nprefix = \"{}/a\"\ninsecure = true\nblocked = true\n",
            fx.addr()
        ),
    );
    for args in [
        vec!["convert", "--registries-conf", s(&blocked), &src, "z.tar"],
        vec![
            "convert",
            "--registries-conf",
            s(&blocked),
            "--tls-verify=false",
            &basic,
            &src,
        ],
    ] {
        let mut cmd = dh_command(t, &args);
        cmd.current_dir(t);
        let err = fails(cmd.output().unwrap(), "a blocked registry");
        assert!(
            err.contains("blocked by") && err.contains(s(&blocked)),
            "{err}"
        );
    }
    assert!(!t.join("z.tar").exists());
    // Another repository of the same registry is not blocked.
    push(t, fx.addr(), "b/app:1");
    let mut cmd = dh_command(
        t,
        &[
            "convert",
            "--registries-conf",
            s(&blocked),
            "--tls-verify=false",
            &format!("docker://{}/b/app:1", fx.addr()),
            s(&t.join("b.tar")),
        ],
    );
    cmd.current_dir(t);
    succeeds(cmd.output().unwrap(), "another repository");
    // A malformed file: one line naming the file and the line.
    let bad = write_conf(
        t,
        "bad.conf",
        "[[registry]]\nprefix = \"x\"\ninsecure = maybe\n",
    );
    let err = fails(
        dh_command(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&bad),
                &src,
                s(&t.join("w.tar")),
            ],
        )
        .output()
        .unwrap(),
        "a malformed registries.conf",
    );
    assert!(err.contains(&format!("{}: line 3: ", s(&bad))), "{err}");
}

/// A CONNECT proxy on 127.0.0.1: it answers each `CONNECT host:port` with 200, relays
/// bytes both ways to `upstream` (whatever host was asked for: dockhand never proxies
/// loopback, so the tests name the registry by a name only this proxy resolves), and
/// counts the tunnels and the `Proxy-Authorization` headers.
struct ConnectProxy {
    addr: String,
    tunnels: Arc<AtomicUsize>,
    authorized: Arc<AtomicUsize>,
}

/// The registry's name in the proxy tests: not loopback, resolved by the proxy alone.
const PROXIED_HOST: &str = "registry.proxied.test";

impl ConnectProxy {
    fn start(upstream: &str) -> ConnectProxy {
        let upstream = upstream.to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let authorized = Arc::new(AtomicUsize::new(0));
        let (count, auth) = (tunnels.clone(), authorized.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (count, auth) = (count.clone(), auth.clone());
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = tunnel(client, &upstream, &count, &auth);
                });
            }
        });
        ConnectProxy {
            addr,
            tunnels,
            authorized,
        }
    }

    fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

fn tunnel(
    client: TcpStream,
    upstream: &str,
    count: &AtomicUsize,
    auth: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let mut c = client;
        return c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    };
    if !target.starts_with(PROXIED_HOST) {
        let mut c = client;
        return c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if header
            .to_ascii_lowercase()
            .starts_with("proxy-authorization:")
        {
            auth.fetch_add(1, Ordering::SeqCst);
        }
    }
    let upstream = TcpStream::connect(upstream)?;
    count.fetch_add(1, Ordering::SeqCst);
    let mut c = client.try_clone()?;
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let mut up_write = upstream.try_clone()?;
    // What the reader buffered past the head goes first.
    let buffered = reader.buffer().to_vec();
    up_write.write_all(&buffered)?;
    let mut up_read = upstream;
    let mut c_write = client;
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut c_write);
        let _ = c_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut reader.into_inner(), &mut up_write);
    let _ = up_write.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
    Ok(())
}

#[test]
fn proxies_from_the_environment_carry_requests_unless_no_proxy_says() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    push(t, fx.addr(), "p/app:1");
    let port = fx.addr().rsplit_once(':').unwrap().1;
    let src = format!("docker://{PROXIED_HOST}:{port}/p/app:1");
    let proxy = ConnectProxy::start(fx.addr());
    let pull = |vars: &[(&str, String)], out: &str| {
        let mut cmd = dh_command(
            t,
            &[
                "convert",
                "-q",
                "--tls-verify=false",
                "--retry-times",
                "0",
                &src,
                s(&t.join(out)),
            ],
        );
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let with_creds = format!("http://someone:s3cret-pw@{}", proxy.addr);
    // A plain-HTTP registry goes through HTTP_PROXY (tunnelled with CONNECT), with the
    // proxy's credentials sent to the proxy.
    succeeds(
        pull(&[("HTTP_PROXY", with_creds.clone())], "a.tar"),
        "HTTP_PROXY",
    );
    let after_upper = proxy.tunnels();
    assert!(after_upper > 0);
    assert!(proxy.authorized.load(Ordering::SeqCst) > 0);
    ok(&["verify", s(&t.join("a.tar"))]);
    succeeds(
        pull(&[("http_proxy", format!("http://{}", proxy.addr))], "b.tar"),
        "http_proxy",
    );
    assert!(proxy.tunnels() > after_upper);
    let before = proxy.tunnels();
    // NO_PROXY (either case) sends it directly: to a name nothing else resolves, so
    // the pull fails, and no tunnel was opened.
    for no_proxy in ["NO_PROXY", "no_proxy"] {
        let out = pull(
            &[
                ("HTTP_PROXY", with_creds.clone()),
                (no_proxy, format!("example.com, {PROXIED_HOST}")),
            ],
            &format!("c-{no_proxy}.tar"),
        );
        fails(out, no_proxy);
    }
    assert_eq!(proxy.tunnels(), before);
    // HTTPS_PROXY is for https:// targets only: the HTTPS attempt (tls-verify=false
    // tries HTTPS first) goes through it, the plain-HTTP requests do not.
    fails(
        pull(&[("HTTPS_PROXY", with_creds.clone())], "d.tar"),
        "HTTPS_PROXY",
    );
    let before = before + 1;
    assert_eq!(proxy.tunnels(), before);
    // Loopback is never proxied: the registry by its own address, directly.
    let local = format!("docker://{}/p/app:1", fx.addr());
    let mut cmd = dh_command(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            &local,
            s(&t.join("l.tar")),
        ],
    );
    cmd.env("HTTP_PROXY", &with_creds)
        .env("HTTPS_PROXY", &with_creds);
    succeeds(cmd.output().unwrap(), "loopback");
    assert_eq!(proxy.tunnels(), before);
    // A proxy that does not answer: the error names it without its credentials.
    // (An https:// request, which goes through HTTPS_PROXY.)
    let dead = format!("http://someone:s3cret-pw@127.0.0.1:{}", free_port());
    let mut cmd = dh_command(
        t,
        &["convert", "--retry-times", "0", &src, s(&t.join("e.tar"))],
    );
    cmd.env("HTTPS_PROXY", dead).env("http_proxy", &with_creds);
    let err = fails(cmd.output().unwrap(), "a dead proxy");
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("through the proxy http://127.0.0.1:"), "{err}");
    assert!(err.contains("check the proxy"), "{err}");
    // An unusable proxy setting is a usage error (exit code 2), named without its
    // credentials.
    let out = pull(
        &[("HTTP_PROXY", "socks5://u:s3cret-pw@127.0.0.1:1".into())],
        "f.tar",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("s3cret") && err.contains("HTTP_PROXY"),
        "{err}"
    );
}

#[test]
fn a_mirror_gets_the_credentials_of_its_own_host_only() {
    use base64::Engine;
    const USER: &str = "mirror-user";
    const PASS: &str = "mirror-pa55";
    let Some(origin) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let Some(mirror) = RegistryFixture::builder()
        .auth(Auth::basic(USER, PASS))
        .proxy()
        .start()
    else {
        return;
    };
    let t = origin.dir();
    let creds = format!("{USER}:{PASS}");
    let basic = fixture("docker-save-basic").input().to_string();
    let dst = format!("docker://{}/team/app:1", mirror.addr());
    succeeds(
        dh_command(
            t,
            &[
                "convert",
                "-q",
                "--tls-verify=false",
                "--creds",
                &creds,
                &basic,
                &dst,
            ],
        )
        .output()
        .unwrap(),
        "pushing to the mirror",
    );
    let conf = write_conf(
        t,
        "registries.conf",
        &format!(
            "[[registry]]\nlocation = \"{o}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{m}\"\ninsecure = true\n",
            o = origin.addr(),
            m = mirror.addr(),
        ),
    );
    let auth = base64::engine::general_purpose::STANDARD.encode(&creds);
    let authfile = write_conf(
        t,
        "auth.json",
        &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, mirror.addr()),
    );
    let src = format!("docker://{}/team/app:1", origin.addr());
    origin.proxy().reset_counters();
    // The auth file's entry for the mirror's host serves the mirror.
    succeeds(
        dh_command(
            t,
            &[
                "convert",
                "-q",
                "--registries-conf",
                s(&conf),
                "--authfile",
                s(&authfile),
                &src,
                s(&t.join("a.tar")),
            ],
        )
        .output()
        .unwrap(),
        "pulling from the mirror with its own credentials",
    );
    assert_eq!(asked(&origin), 0, "{:?}", origin.proxy().requests());
    // --creds are for the registry named, never sent to a mirror: the mirror refuses
    // the pull, and the origin (which lacks the image) answers.
    mirror.proxy().reset_counters();
    let err = fails(
        dh_command(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&conf),
                "--creds",
                &creds,
                &src,
                s(&t.join("b.tar")),
            ],
        )
        .output()
        .unwrap(),
        "--creds are not the mirror's",
    );
    assert!(err.contains("the mirrors failed too"), "{err}");
    assert!(!err.contains(PASS), "{err}");
    assert!(mirror.proxy().count("GET", "/manifests/1", Some(200)) == 0);
    assert!(mirror.proxy().count("GET", "", Some(401)) > 0);
}
