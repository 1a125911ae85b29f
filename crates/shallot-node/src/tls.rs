//! The node's TLS certificates.
//!
//! A node has two self-signed server certificates:
//! - its **node certificate**, whose key is its Ed25519 service-node key (made from the node's
//!   seed on every start, see [`crate::peer_tls`]). It proves the node key in the handshake;
//!   peers and Shallot clients check it against the key the directory lists.
//! - a **fallback** ECDSA P-256 certificate, made on first start and kept in the data directory,
//!   for TLS clients that do not offer Ed25519 signatures (e.g. BoringSSL-based Session clients,
//!   which do not verify storage-server certificates anyway).
//!
//! [`NodeCertResolver`] serves the node certificate to every client whose hello offers the
//! Ed25519 signature scheme, and the fallback otherwise. A client that insists on the node key
//! offers only Ed25519, so it can never be served the fallback.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use shallot_proto::Identity;

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

pub use shallot_tls::install_crypto_provider;

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

/// Chooses the server certificate per handshake: the Ed25519 node certificate when the client
/// offers Ed25519, else the fallback certificate.
#[derive(Debug)]
pub struct NodeCertResolver {
    node: Arc<CertifiedKey>,
    fallback: Arc<CertifiedKey>,
}

impl NodeCertResolver {
    /// The resolver for `identity`, with the fallback certificate kept in `dir`.
    pub fn new(dir: &Path, identity: &Identity) -> Result<Arc<Self>, TlsError> {
        install_crypto_provider();
        let provider = rustls::crypto::ring::default_provider();
        let (cert, key) = crate::peer_tls::node_certificate(identity)?;
        let node = CertifiedKey::from_der(vec![cert], PrivateKeyDer::Pkcs8(key), &provider)?;
        let (certs, key) = load_or_create(dir)?;
        let fallback = CertifiedKey::from_der(certs, key, &provider)?;
        Ok(Arc::new(Self {
            node: Arc::new(node),
            fallback: Arc::new(fallback),
        }))
    }
}

impl ResolvesServerCert for NodeCertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello
            .signature_schemes()
            .contains(&SignatureScheme::ED25519)
        {
            Some(self.node.clone())
        } else {
            Some(self.fallback.clone())
        }
    }
}

/// A rustls server configuration for the node's HTTPS listener (HTTP/1.1 and HTTP/2), serving
/// `identity`'s node certificate (see the module doc).
pub fn server_config(
    dir: &Path,
    identity: &Identity,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    install_crypto_provider();
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(crate::peer_tls::OptionalNodeCert::new())
        .with_cert_resolver(NodeCertResolver::new(dir, identity)?);
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
        let identity = Identity::from_seed([5; 32]);
        server_config(dir.path(), &identity).unwrap();
        let first = std::fs::read(dir.path().join(CERT_FILE)).unwrap();
        server_config(dir.path(), &identity).unwrap();
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
            server_config(dir.path(), &identity),
            Err(TlsError::BadPem { .. })
        ));
    }
}
