//! Image references, parsed and normalised as docker does.

use oci_client::Reference;

use super::RegistryError;

/// Parses a reference as docker does (`redis` is `docker.io/library/redis:latest`).
pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    Reference::try_from(reference).map_err(|e| RegistryError::BadReference {
        reference: reference.to_string(),
        message: e.to_string(),
        input: report::BadInput::marker(),
    })
}

/// The cache name of a registry reference: its fully qualified form.
pub fn cache_name(reference: &str) -> Result<String, RegistryError> {
    Ok(parse_reference(reference)?.whole())
}

/// Registries on this machine are spoken to over plain HTTP.
pub(super) fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host);
    h == "localhost"
        || h == "[::1]"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_like_docker() {
        assert_eq!(cache_name("redis:7").unwrap(), "docker.io/library/redis:7");
        assert_eq!(
            cache_name("127.0.0.1:5000/x/y").unwrap(),
            "127.0.0.1:5000/x/y:latest"
        );
        assert!(cache_name("no spaces allowed").is_err());
        assert!(cache_name("x@sha256:tooshort").is_err());
    }

    #[test]
    fn loopback_hosts_speak_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:80"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("127.example.com:5000"));
    }
}
