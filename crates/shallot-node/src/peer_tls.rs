//! Node-to-node authentication by mutual TLS with node keys (see docs/node-protocol.md).
//!
//! A node connecting to a peer presents a client certificate whose key *is* its Ed25519 service
//! node key. The TLS 1.3 handshake signature proves possession of that key once per pooled
//! connection, so relayed onion hops and forwarded requests cost no per-request signature.
//! Ordinary clients connect without a certificate; the `/snode/` routes refuse them.
//!
//! The other way round, a node's server certificate is the same Ed25519 certificate (offered to
//! every TLS client that supports Ed25519, see [`crate::tls`]), and a node connecting to a peer
//! checks that the peer proves the key the directory lists for it, by its pinned host name
//! ([`shallot_tls`], shared with clients). No certificate authority is involved; the
//! certificate stays self-signed.

use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use shallot_proto::Identity;
pub use shallot_tls::{certificate_ed25519, pinned_host, PinnedResolver};
use shallot_tls::{PinnedVerifier, Unpinned};

use crate::tls::TlsError;

/// The node's self-signed Ed25519 certificate (its key is the node key), made with rcgen.
fn rcgen_node_certificate(
    identity: &Identity,
) -> Result<(rcgen::Certificate, rcgen::KeyPair), TlsError> {
    let der = identity
        .signing_key()
        .to_pkcs8_der()
        .map_err(|_| TlsError::Generate(rcgen::Error::CouldNotParseKeyPair))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()));
    let key = rcgen::KeyPair::from_der_and_sign_algo(&key_der, &rcgen::PKCS_ED25519)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        identity.ed25519_public().to_hex(),
    );
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

/// The node's self-signed Ed25519 certificate (its key is the node key) and that key, PKCS#8.
/// It serves as the client certificate towards peers and as the server certificate.
pub fn node_certificate(
    identity: &Identity,
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), TlsError> {
    let (cert, key) = rcgen_node_certificate(identity)?;
    Ok((
        cert.der().clone(),
        PrivatePkcs8KeyDer::from(key.serialize_der()),
    ))
}

/// A client certificate and key for connecting to peers as `identity` (PEM: cert then key).
pub fn client_identity_pem(identity: &Identity) -> Result<Vec<u8>, TlsError> {
    let (cert, key) = rcgen_node_certificate(identity)?;
    let mut pem = cert.pem().into_bytes();
    pem.extend_from_slice(key.serialize_pem().as_bytes());
    Ok(pem)
}

/// A rustls client configuration presenting `identity`'s node certificate and accepting only
/// peers that prove the key of the pinned host name connected to.
pub fn peer_client_config(identity: &Identity) -> Result<rustls::ClientConfig, TlsError> {
    let (cert, key) = node_certificate(identity)?;
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(PinnedVerifier::new(Unpinned::Refuse))
        .with_client_auth_cert(vec![cert], PrivateKeyDer::Pkcs8(key))?;
    config.alpn_protocols = shallot_tls::alpn();
    Ok(config)
}

/// Accepts connections with or without a client certificate; when one is given, the handshake
/// must prove possession of its key. Which keys are acceptable peers is decided per request,
/// against the current directory, not here.
#[derive(Debug)]
pub struct OptionalNodeCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl OptionalNodeCert {
    /// A verifier using the process's crypto provider algorithms.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for OptionalNodeCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Only Ed25519 node keys are meaningful here; anything else is refused outright.
        certificate_ed25519(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::ServerName;
    use shallot_proto::Ed25519Pub;
    use std::net::Ipv4Addr;

    #[test]
    fn node_certificate_carries_the_node_key() {
        let identity = Identity::from_seed([3; 32]);
        let (cert, _) = node_certificate(&identity).unwrap();
        assert_eq!(certificate_ed25519(&cert), Some(identity.ed25519_public()));
        assert!(peer_client_config(&identity).is_ok());
    }

    /// A client that verifies nothing and offers no Ed25519 (like BoringSSL's defaults).
    #[derive(Debug)]
    struct NoEd25519(WebPkiSupportedAlgorithms);
    impl ServerCertVerifier for NoEd25519 {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(m, c, d, &self.0)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(m, c, d, &self.0)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::RSA_PSS_SHA256,
            ]
        }
    }

    /// Serves one TLS handshake as `server` (a node's real server configuration) and returns
    /// the certificate key the client saw, or the client's handshake error.
    async fn handshake(
        server: &Identity,
        client: rustls::ClientConfig,
        name: &str,
    ) -> Result<Option<Ed25519Pub>, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::tls::server_config(dir.path(), server).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let serve = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let result = connector
            .connect(name, tcp)
            .await
            .map(|tls| {
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| certificate_ed25519(&c[0]))
            })
            .map_err(|e| e.to_string());
        serve.await.unwrap();
        result
    }

    #[tokio::test]
    async fn peers_accept_only_the_listed_key_and_legacy_clients_still_connect() {
        crate::tls::install_crypto_provider();
        let node = Identity::from_seed([6; 32]);
        let other = Identity::from_seed([7; 32]);
        let me = Identity::from_seed([8; 32]);
        let ip = Ipv4Addr::LOCALHOST;
        let config = || peer_client_config(&me).unwrap();

        // The listed key: accepted, and the certificate is the node key.
        let seen = handshake(&node, config(), &pinned_host(ip, &node.ed25519_public())).await;
        assert_eq!(seen, Ok(Some(node.ed25519_public())));
        // The directory lists another key at this address: refused.
        let refused = handshake(&node, config(), &pinned_host(ip, &other.ed25519_public())).await;
        assert!(refused.is_err(), "{refused:?}");
        // A name that pins nothing: refused.
        assert!(handshake(&node, config(), "localhost").await.is_err());

        // A client that verifies nothing and does not offer Ed25519 gets the fallback
        // certificate and still connects.
        let legacy = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoEd25519(
                rustls::crypto::ring::default_provider().signature_verification_algorithms,
            )))
            .with_no_client_auth();
        assert_eq!(handshake(&node, legacy, "localhost").await, Ok(None));
    }
}
