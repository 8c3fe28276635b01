//! Parsing `WWW-Authenticate` challenges, `Link` headers and `Retry-After`.
