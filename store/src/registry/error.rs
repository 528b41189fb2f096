//! What went wrong talking to a registry, and the one place that turns
//! what the client reported into it.

use oci_client::errors::{OciDistributionError, OciErrorCode};

use contract::Arch;
use report::BadInput;

use crate::cache::CacheError;

/// One variant per failing step. What the user asked for being wrong (a
/// reference or mirror that does not parse, an image or platform the
/// registry does not have) carries a [`BadInput`] marker: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference:?} is not an image reference: {message}")]
    BadReference {
        reference: String,
        message: String,
        #[source]
        input: BadInput,
    },
    #[error("--mirror {mirror:?}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000")]
    BadMirror {
        mirror: String,
        #[source]
        input: BadInput,
    },
    #[error("registry said 401 for {reference}: run docker login {registry}")]
    Unauthorized { reference: String, registry: String },
    #[error("registry said access denied for {reference}: check that {registry} lets this account {operation}")]
    Denied {
        reference: String,
        registry: String,
        operation: &'static str,
    },
    #[error("registry {registry} has no image {reference}")]
    NotFound {
        reference: String,
        registry: String,
        #[source]
        input: BadInput,
    },
    #[error("no linux/{} image in index {reference} (it has: {available})", .arch.oci())]
    NoPlatform {
        arch: Arch,
        reference: String,
        available: String,
        #[source]
        input: BadInput,
    },
    #[error("image {reference} is {actual}, not linux/{}", .arch.oci())]
    WrongPlatform {
        reference: String,
        arch: Arch,
        actual: String,
        #[source]
        input: BadInput,
    },
    #[error("blob {digest} from {registry} does not match its digest")]
    Digest { digest: String, registry: String },
    #[error("blob {digest} from {registry} is larger than its descriptor says ({size} bytes)")]
    Oversize {
        digest: String,
        registry: String,
        size: u64,
    },
    #[error("{reference}: {media_type:?} is not an image manifest hull can read")]
    MediaType {
        reference: String,
        media_type: String,
    },
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("registry {registry}: {message}")]
    Other { registry: String, message: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl RegistryError {
    /// True when the input is at fault (exit code 2): the error carries a
    /// [`BadInput`] marker. For callers that add a position to the message.
    pub fn is_bad_input(&self) -> bool {
        report::exit_code(self) == report::Exit::BadInput
    }
}

/// One clear error for what the client reported.
pub(super) fn map_error(
    e: OciDistributionError,
    reference: &str,
    registry: &str,
    operation: &'static str,
) -> RegistryError {
    let unauthorized = || RegistryError::Unauthorized {
        reference: reference.to_string(),
        registry: registry.to_string(),
    };
    let not_found = || RegistryError::NotFound {
        reference: reference.to_string(),
        registry: registry.to_string(),
        input: BadInput::marker(),
    };
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.contains(&&OciErrorCode::Unauthorized) {
                unauthorized()
            } else if codes.contains(&&OciErrorCode::Denied) {
                RegistryError::Denied {
                    reference: reference.to_string(),
                    registry: registry.to_string(),
                    operation,
                }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found()
            } else {
                RegistryError::Other {
                    registry: registry.to_string(),
                    message: format!("{reference}: {envelope}"),
                }
            }
        }
        OciDistributionError::RequestError(e) => {
            let mut message = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                message = format!("{message}: {s}");
                src = s.source();
            }
            RegistryError::Unreachable {
                registry: registry.to_string(),
                message,
            }
        }
        e => RegistryError::Other {
            registry: registry.to_string(),
            message: format!("{reference}: {e}"),
        },
    }
}
