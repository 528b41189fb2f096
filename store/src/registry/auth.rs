//! Credentials, found the way docker finds them: `auths` and
//! `credHelpers` of `config.json` (`$DOCKER_CONFIG` or `~/.docker`), then
//! its `credsStore` helper.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_client::secrets::RegistryAuth;
use serde_json::Value;

use super::RegistryError;

/// Credentials for `registry` from the user's docker `config.json`
/// (`$DOCKER_CONFIG` or `~/.docker`), credential helpers included.
pub(super) fn credentials(registry: &str) -> Result<RegistryAuth, RegistryError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    // docker_credential reports a missing config.json as a read error; no
    // file is simply no credentials.
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"));
    if !config.as_ref().is_some_and(|c| c.is_file()) {
        return Ok(RegistryAuth::Anonymous);
    }
    let keys: Vec<&str> = if registry == "docker.io" || registry == "index.docker.io" {
        vec![
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
        ]
    } else {
        vec![registry]
    };
    for key in keys {
        match docker_credential::get_credential(key) {
            Ok(DockerCredential::UsernamePassword(u, p)) => return Ok(RegistryAuth::Basic(u, p)),
            Ok(DockerCredential::IdentityToken(_)) => {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    message: "config.json holds an identity token, which hull cannot use; log in with a username and password or token".into(),
                })
            }
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => {}
            Err(e) => {
                let message = match e {
                    E::HelperFailure { helper, stderr, .. } => {
                        format!("credential helper docker-credential-{helper} failed: {}", stderr.trim())
                    }
                    E::HelperCommunicationError => "cannot run the credential helper".into(),
                    E::ConfigReadError => format!("cannot read {}", config.unwrap_or_default().display()),
                    e => format!("{e:?} in {}", config.unwrap_or_default().display()),
                };
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    message,
                });
            }
        }
    }
    // docker_credential reads `auths` and `credHelpers`, not `credsStore`
    // (the helper for every registry): ask that one here.
    let store = std::fs::read(config.as_deref().unwrap_or(Path::new("")))
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v["credsStore"].as_str().map(String::from));
    if let Some(store) = store.filter(|s| !s.is_empty()) {
        return creds_store(&store, registry);
    }
    Ok(RegistryAuth::Anonymous)
}

/// Runs `docker-credential-STORE get` with the registry on stdin, as docker does.
fn creds_store(store: &str, registry: &str) -> Result<RegistryAuth, RegistryError> {
    use std::process::{Command, Stdio};
    let helper = format!("docker-credential-{store}");
    let fail = |message: String| RegistryError::Credentials {
        registry: registry.to_string(),
        message,
    };
    let mut child = Command::new(&helper)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {helper} (credsStore in config.json): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("{helper}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        return Err(fail(format!(
            "{helper} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("{helper} did not answer JSON: {e}")))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(RegistryAuth::Basic(u.into(), p.into())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}
