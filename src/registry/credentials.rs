//! Finding credentials for a registry.
