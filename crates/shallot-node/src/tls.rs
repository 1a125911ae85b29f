//! The node's TLS certificate: self-signed, made on first start and kept in the data directory.
//!
//! Session clients and peers do not verify storage-server certificates (identity is proven by
//! the node's Ed25519 key at the application layer), so a self-signed certificate is all we need.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// File names inside the data directory.
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// Why the TLS setup failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating the certificate failed.
    #[error("could not generate a TLS certificate")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing the PEM files failed.
    #[error("could not {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The PEM files exist but are not usable.
    #[error("{path} is not a valid PEM certificate or key; delete it to make a new one")]
    BadPem {
        /// The file.
        path: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration rejected")]
    Config(#[from] rustls::Error),
}

/// Installs the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads `cert.pem`/`key.pem` from `dir`, creating them on first start.
pub fn load_or_create(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Shallot");
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = params.self_signed(&key)?;
        write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect)
        .map_err(|_| TlsError::BadPem {
            path: cert_path.display().to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| TlsError::BadPem {
        path: key_path.display().to_string(),
    })?;
    Ok((certs, key))
}

/// A rustls server configuration for the node's HTTPS listener (HTTP/1.1 and HTTP/2).
pub fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    install_crypto_provider();
    let (certs, key) = load_or_create(dir)?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(crate::peer_tls::OptionalNodeCert::new())
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let io = |action, source| TlsError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| io("create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path()).unwrap();
        let first = std::fs::read(dir.path().join(CERT_FILE)).unwrap();
        server_config(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(CERT_FILE)).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(matches!(
            server_config(dir.path()),
            Err(TlsError::BadPem { .. })
        ));
    }
}
