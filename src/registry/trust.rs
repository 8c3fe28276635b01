//! What a registry's TLS trusts and presents, as the platform does: the system's trust
//! store (which `SSL_CERT_FILE` / `SSL_CERT_DIR` replace, as OpenSSL's do), plus, per
//! registry, the CAs (`*.crt`) and the client pair (`NAME.cert` + `NAME.key`) of
//! `$HOME/.config/containers/certs.d/HOST[:PORT]/` (where rootless podman and skopeo
//! keep them), `/etc/containers/certs.d/HOST[:PORT]/` and
//! `/etc/docker/certs.d/HOST[:PORT]/`, or of
//! the cert dir alone when one is given (as skopeo's `--cert-dir`). And what a failed
//! handshake means, in a [`TlsProblem`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::RegistryOptions;
use crate::error::{Error, Result, Setting, TlsProblem};
use crate::text::shown;

/// The system folders of per-registry certificates, in the order they are read.
pub(crate) const CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// The user's folder of per-registry certificates, read first:
/// `$HOME/.config/containers/certs.d` (containers/image's, for rootless use).
fn user_certs_d() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".config/containers/certs.d"))
}

/// Largest certificate or key file read.
const MAX_CERT_FILE: u64 = 1 << 20;

/// The TLS set-up of one registry.
pub(crate) struct Trust {
    /// For ureq, for the registry's own origin: its client pair presented.
    pub(crate) tls: TlsConfig,
    /// For any other origin (a redirect's storage, an upload location, a token
    /// service elsewhere): the same roots, and no client certificate, which is the
    /// registry's credential.
    pub(crate) tls_elsewhere: TlsConfig,
    /// The client certificate file presented, escaped (for messages).
    pub(crate) client_cert: Option<String>,
}

/// The TLS set-up for `registry` (`HOST[:PORT]` as references name it).
pub(crate) fn load(registry: &str, options: &RegistryOptions) -> Result<Trust> {
    let dirs: Vec<PathBuf> = match &options.cert_dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::Certificate {
                    file: shown(&dir.to_string_lossy()),
                    problem: format!("the {} is not a directory", Setting::CertDir),
                });
            }
            vec![dir.clone()]
        }
        // A name with a path separator cannot be a folder of certs.d (references are
        // validated before, this is only a second guard).
        None if registry.contains('/') || registry.starts_with('.') => Vec::new(),
        None => user_certs_d()
            .into_iter()
            .chain(CERTS_D.iter().map(PathBuf::from))
            .map(|d| d.join(registry))
            .filter(|d| d.is_dir())
            .collect(),
    };
    let mut cas = Vec::new();
    let mut client = None;
    for dir in &dirs {
        let found = read_dir(dir)?;
        cas.extend(found.cas);
        if client.is_none() {
            client = found.client;
        }
    }
    let mut builder = TlsConfig::builder().disable_verification(!options.tls_verify);
    if options.tls_verify {
        let mut roots: Vec<Certificate<'static>> = system_roots()?.as_ref().clone();
        roots.extend(cas);
        if roots.is_empty() {
            // Every registry would then fail as an unknown issuer: say why instead.
            return Err(Error::Unsupported(format!(
                "the system trust store holds no CA certificates, and none was given for {}: install the ca-certificates package, name a PEM bundle in SSL_CERT_FILE, or give the registry's CA with {}",
                shown(registry),
                Setting::CertDir
            )));
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    let client_cert = client.as_ref().map(|(file, _)| file.clone());
    let tls_elsewhere = builder.build();
    let tls = TlsConfig::builder()
        .disable_verification(tls_elsewhere.disable_verification())
        .root_certs(tls_elsewhere.root_certs().clone())
        .client_cert(client.map(|(_, cert)| cert))
        .build();
    Ok(Trust {
        tls,
        tls_elsewhere,
        client_cert,
    })
}

/// What one certificate folder holds.
struct Found {
    cas: Vec<Certificate<'static>>,
    /// The first client pair by name: its `.cert` file (escaped), and the pair.
    client: Option<(String, ClientCert)>,
}

/// The CAs and the first client pair of `dir`, every file checked.
fn read_dir(dir: &Path) -> Result<Found> {
    let shown_path = |p: &Path| shown(&p.to_string_lossy());
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Certificate {
        file: shown_path(dir),
        problem: format!("cannot be read: {e}"),
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Certificate {
            file: shown_path(dir),
            problem: format!("cannot be read: {e}"),
        })?;
        names.push(entry.path());
    }
    names.sort();
    let mut found = Found {
        cas: Vec::new(),
        client: None,
    };
    let ext = |p: &Path| p.extension().and_then(|e| e.to_str()).map(str::to_string);
    for path in &names {
        match ext(path).as_deref() {
            Some("crt") => {
                let bytes = read_file(path)?;
                for der in certificates(path, &bytes)? {
                    // A root that webpki cannot use is an error here, not a silent skip.
                    rustls::RootCertStore::empty()
                        .add(der.clone())
                        .map_err(|e| Error::Certificate {
                            file: shown_path(path),
                            problem: format!("not a usable CA certificate: {e}"),
                        })?;
                    found
                        .cas
                        .push(Certificate::from_der(der.as_ref()).to_owned());
                }
            }
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.is_file() {
                    return Err(Error::Certificate {
                        file: shown_path(path),
                        problem: format!(
                            "a client certificate without its key {}",
                            shown_path(&key)
                        ),
                    });
                }
                let pair = client_pair(path, &key)?;
                if found.client.is_none() {
                    found.client = Some((shown_path(path), pair));
                }
            }
            Some("key") => {
                let cert = path.with_extension("cert");
                if !cert.is_file() {
                    return Err(Error::Certificate {
                        file: shown_path(path),
                        problem: format!(
                            "a client key without its certificate {}",
                            shown_path(&cert)
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The bytes of `path`, at most [`MAX_CERT_FILE`].
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let problem = |e: std::io::Error| Error::Certificate {
        file: shown(&path.to_string_lossy()),
        problem: format!("cannot be read: {e}"),
    };
    let file = std::fs::File::open(path).map_err(problem)?;
    let mut bytes = Vec::new();
    file.take(MAX_CERT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(problem)?;
    if bytes.len() as u64 > MAX_CERT_FILE {
        return Err(Error::Certificate {
            file: shown(&path.to_string_lossy()),
            problem: format!("larger than {MAX_CERT_FILE} bytes"),
        });
    }
    Ok(bytes)
}

/// The PEM certificates of `bytes` (from `path`): at least one, all well-formed.
fn certificates(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let malformed = |problem: String| Error::Certificate {
        file: shown(&path.to_string_lossy()),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| malformed(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(malformed("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The client pair of `cert` and `key`, checked to belong together (ureq panics on a
/// pair that does not).
fn client_pair(cert: &Path, key: &Path) -> Result<ClientCert> {
    let chain = certificates(cert, &read_file(cert)?)?;
    let key_bytes = read_file(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| Error::Certificate {
        file: shown(&key.to_string_lossy()),
        problem: format!("holds no usable PEM private key: {e}"),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider).map_err(
        |e| Error::Certificate {
            file: shown(&key.to_string_lossy()),
            problem: format!("is not the key of {}: {e}", shown(&cert.to_string_lossy())),
        },
    )?;
    let chain: Vec<Certificate<'static>> = chain
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let key = PrivateKey::from_pem(&key_bytes).map_err(|e| Error::Certificate {
        file: shown(&key.to_string_lossy()),
        problem: format!("holds no usable PEM private key: {e}"),
    })?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

/// The system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set), loaded once per
/// value of those variables.
fn system_roots() -> Result<Arc<Vec<Certificate<'static>>>> {
    type Loaded = (Option<std::ffi::OsString>, Option<std::ffi::OsString>);
    static ROOTS: Mutex<Option<(Loaded, Arc<Vec<Certificate<'static>>>)>> = Mutex::new(None);
    let file = std::env::var_os("SSL_CERT_FILE");
    let dir = std::env::var_os("SSL_CERT_DIR");
    let key = (file.clone(), dir.clone());
    let mut cached = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((loaded, roots)) = cached.as_ref() {
        if *loaded == key {
            return Ok(roots.clone());
        }
    }
    let result = rustls_native_certs::load_native_certs();
    // The platform's store is read best-effort (a stray unreadable file in
    // /etc/ssl/certs is not the user's doing); a file or folder the user named is not.
    if file.is_some() || dir.is_some() {
        if let Some(e) = result.errors.first() {
            let named = file
                .as_ref()
                .map(|f| format!("SSL_CERT_FILE={}", f.to_string_lossy()))
                .or_else(|| {
                    dir.as_ref()
                        .map(|d| format!("SSL_CERT_DIR={}", d.to_string_lossy()))
                })
                .unwrap_or_default();
            return Err(Error::Certificate {
                file: shown(&named),
                problem: shown(&e.to_string()),
            });
        }
    }
    let roots: Arc<Vec<Certificate<'static>>> = Arc::new(
        result
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect(),
    );
    *cached = Some((key, roots.clone()));
    Ok(roots)
}

/// The rustls error inside `e`, when the failure was TLS's.
pub(crate) fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// What a TLS failure means, when `e` is one; `client_cert` is the client certificate
/// that was presented, if any.
pub(crate) fn problem(e: &ureq::Error, client_cert: Option<&str>) -> Option<TlsProblem> {
    use rustls::{AlertDescription as A, CertificateError as C, InvalidMessage};
    let tls = rustls_error(e)?;
    Some(match tls {
        rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) => TlsProblem::PlainHttp,
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => TlsProblem::UnknownIssuer,
            C::BadSignature => TlsProblem::BadSignature,
            C::NotValidForName => TlsProblem::WrongName {
                expected: String::new(),
                presented: Vec::new(),
            },
            C::NotValidForNameContext {
                expected,
                presented,
            } => TlsProblem::WrongName {
                expected: shown(&expected.to_str()),
                presented: presented.iter().map(|p| shown(presented_name(p))).collect(),
            },
            C::Expired => TlsProblem::Expired { not_after: None },
            C::ExpiredContext { not_after, .. } => TlsProblem::Expired {
                not_after: Some(httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(not_after.as_secs()),
                )),
            },
            C::NotValidYet | C::NotValidYetContext { .. } => TlsProblem::NotYetValid,
            // webpki's CaUsedAsEndEntity reaches rustls as an opaque `Other`.
            C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                TlsProblem::CaUsedAsLeaf
            }
            other => TlsProblem::Other(shown(&format!("invalid peer certificate: {other}"))),
        },
        rustls::Error::AlertReceived(A::CertificateRequired) => TlsProblem::ClientCertRequired,
        rustls::Error::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown) => {
            match client_cert {
                Some(cert) => TlsProblem::ClientCertRefused {
                    cert: cert.to_string(),
                },
                None => TlsProblem::ClientCertRequired,
            }
        }
        other => TlsProblem::Other(shown(&other.to_string())),
    })
}

/// A name as rustls presents it (`DnsName("x")`, `IpAddress(1.2.3.4)`): the name alone.
fn presented_name(text: &str) -> &str {
    match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) if open < close => text[open + 1..close].trim_matches('"'),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_kind() {
        assert_eq!(
            presented_name("DnsName(\"registry.example\")"),
            "registry.example"
        );
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("plain"), "plain");
    }
}
