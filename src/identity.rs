//! Who is asking. The signed-in user comes from the header named by
//! `DAEDALUS_AUTH_HEADER`, believed only when the peer is one of
//! `DAEDALUS_TRUSTED_PROXIES`. In development a request without a trusted header is the
//! single local user; in production it is refused with 401.

use std::net::SocketAddr;

use http::HeaderMap;

use crate::config::{Config, Environment};
use crate::error::{Error, Result};

/// The user every development request without an identity header acts as.
pub const LOCAL_USER: &str = "local";

/// Longest identity accepted from the proxy.
const MAX_NAME_LEN: usize = 256;

/// The name of the user making this request.
pub fn claimed_user(cfg: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<String> {
    let trusted = peer.is_some_and(|p| cfg.trusted_proxies.iter().any(|net| net.contains(&p.ip())));
    let header = headers.get(cfg.auth_header.as_str());
    match (header, trusted) {
        (Some(value), true) => parse_name(value.as_bytes()),
        _ if cfg.env == Environment::Development => Ok(LOCAL_USER.to_string()),
        (Some(_), false) => {
            log::warn!(target: "identity", peer = peer.map(|p| p.ip().to_string()).unwrap_or_default().as_str();
                "identity header from an untrusted peer ignored");
            Err(Error::Unauthorized)
        }
        (None, _) => Err(Error::Unauthorized),
    }
}

/// A user name as the proxy sends it: printable UTF-8, trimmed, bounded.
pub fn parse_name(raw: &[u8]) -> Result<String> {
    let bad = || {
        Error::bad_request(
            "invalid_identity",
            "the identity header is not a usable name",
        )
    };
    let name = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
    let printable = name.chars().all(|c| !c.is_control());
    if name.is_empty() || name.len() > MAX_NAME_LEN || !printable {
        return Err(bad());
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::load(&Source::from_pairs(pairs.iter().copied())).expect("valid test config")
    }

    fn headers(name: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-user", name.parse().expect("header value"));
        h
    }

    #[test]
    fn a_header_from_a_trusted_proxy_names_the_user() {
        let cfg = config(&[]);
        let peer = Some("127.0.0.1:5000".parse().expect("addr"));
        assert_eq!(
            claimed_user(&cfg, &headers("alice"), peer).expect("ok"),
            "alice"
        );
    }

    #[test]
    fn a_spoofed_header_from_an_untrusted_peer_is_ignored() {
        let peer = Some("10.1.2.3:5000".parse().expect("addr"));
        let dev = config(&[]);
        assert_eq!(
            claimed_user(&dev, &headers("mallory"), peer).expect("ok"),
            LOCAL_USER
        );
        let prod = config(&[
            ("DAEDALUS_ENV", "production"),
            ("DAEDALUS_DATABASE_URL", "postgresql://x/y"),
        ]);
        assert!(matches!(
            claimed_user(&prod, &headers("mallory"), peer),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            claimed_user(&prod, &HeaderMap::new(), None),
            Err(Error::Unauthorized)
        ));
    }
}
