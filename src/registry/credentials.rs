//! Finding credentials for a registry. (Placeholder until the full lookup lands.)
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Credentials for one registry.
pub(crate) enum Credentials {
    /// A user name and password.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token.
    IdentityToken {
        /// The user.
        username: String,
        /// The token.
        token: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Where credentials come from on the command line.
#[derive(Clone, Debug, Default)]
pub(crate) struct CredentialOptions {
    /// `--creds USER:PASS`.
    pub creds: Option<String>,
    /// `--authfile PATH`.
    pub authfile: Option<PathBuf>,
}

/// Where the environment's files are.
#[derive(Clone, Debug, Default)]
pub(crate) struct Environment {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `$PATH`.
    pub path: Option<OsString>,
}

impl Environment {
    /// This process's environment.
    pub(crate) fn from_process() -> Environment {
        Environment::default()
    }
}

/// Credentials for `registry`.
pub(crate) fn lookup(
    _registry: &str,
    options: &CredentialOptions,
    _env: &Environment,
) -> Result<Option<Credentials>> {
    let Some(creds) = &options.creds else {
        return Ok(None);
    };
    match creds.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        })),
        _ => Err(Error::Usage("--creds takes USER:PASSWORD".into())),
    }
}
