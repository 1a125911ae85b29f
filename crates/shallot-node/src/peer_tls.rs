//! Node-to-node authentication by mutual TLS with node keys (see docs/node-protocol.md).
//!
//! A node connecting to a peer presents a client certificate whose key *is* its Ed25519 service
//! node key. The TLS 1.3 handshake signature proves possession of that key once per pooled
//! connection, so relayed onion hops and forwarded requests cost no per-request signature.
//! Ordinary clients connect without a certificate; the `/snode/` routes refuse them.
//!
//! The other way round, a node's server certificate is the same Ed25519 certificate (offered to
//! every TLS client that supports Ed25519, see [`crate::tls`]), and a node connecting to a peer
//! checks that the peer proves the key the directory lists for it: requests go to a *pinned
//! host* name, `<ip with dashes>.<key hex, first half>.<key hex, second half>.snode`, which
//! [`PinnedResolver`] turns back into the IP and [`PinnedPeerVerifier`] into the expected key.
//! No certificate authority is involved; the certificate stays self-signed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use shallot_proto::{Ed25519Pub, Identity};

use crate::tls::TlsError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The Ed25519 key of a certificate, if it is an Ed25519 certificate.
pub fn certificate_ed25519(cert: &CertificateDer<'_>) -> Option<Ed25519Pub> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let raw = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    Ed25519Pub::from_slice(raw).ok()
}

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

/// Top-level label of pinned host names.
const PINNED_SUFFIX: &str = "snode";

/// The pinned host name of a node at `ip` with key `key` (see the module doc).
pub fn pinned_host(ip: Ipv4Addr, key: &Ed25519Pub) -> String {
    let hex = key.to_hex();
    let [a, b, c, d] = ip.octets();
    format!(
        "{a}-{b}-{c}-{d}.{}.{}.{PINNED_SUFFIX}",
        &hex[..32],
        &hex[32..]
    )
}

/// The IP and key a pinned host name stands for; `None` for any other name.
pub fn parse_pinned_host(host: &str) -> Option<(Ipv4Addr, Ed25519Pub)> {
    let mut labels = host.split('.');
    let ip = labels.next()?;
    let (first, second) = (labels.next()?, labels.next()?);
    if labels.next()? != PINNED_SUFFIX || labels.next().is_some() {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut parts = ip.split('-');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    if parts.next().is_some() || first.len() != 32 || second.len() != 32 {
        return None;
    }
    let key = format!("{first}{second}").parse().ok()?;
    Some((Ipv4Addr::from(octets), key))
}

/// Resolves pinned host names to their IP without any lookup; other names (there should be
/// none on the peer client) go to the system resolver.
#[derive(Debug, Default)]
pub struct PinnedResolver;

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if let Some((ip, _)) = parse_pinned_host(&host) {
                let addrs: reqwest::dns::Addrs =
                    Box::new(std::iter::once(SocketAddr::new(IpAddr::V4(ip), 0)));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Accepts a server certificate only if it is an Ed25519 certificate for the key named by the
/// pinned host name we connected to (the key the directory lists for that peer). Hostnames and
/// certificate chains are not checked: the certificate is self-signed, the key is what counts.
#[derive(Debug)]
pub struct PinnedPeerVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedPeerVerifier {
    /// A verifier using the ring provider's algorithms.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for PinnedPeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ServerName::DnsName(name) = server_name else {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        };
        let (_, expected) = parse_pinned_host(name.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        )?;
        match certificate_ed25519(end_entity) {
            Some(key) if key == expected => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            )),
        }
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
        // Only Ed25519: a node serves its Ed25519 certificate to clients that offer it alone.
        vec![SignatureScheme::ED25519]
    }
}

/// A rustls client configuration without a client certificate, accepting only servers that
/// prove the key of the pinned host name connected to (reachability tests).
pub fn pinned_client_config() -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(PinnedPeerVerifier::new())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// A rustls client configuration presenting `identity`'s node certificate and accepting only
/// peers that prove the key of the pinned host name connected to.
pub fn peer_client_config(identity: &Identity) -> Result<rustls::ClientConfig, TlsError> {
    let (cert, key) = node_certificate(identity)?;
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(PinnedPeerVerifier::new())
        .with_client_auth_cert(vec![cert], PrivateKeyDer::Pkcs8(key))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
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

    #[test]
    fn node_certificate_carries_the_node_key() {
        let identity = Identity::from_seed([3; 32]);
        let (cert, _) = node_certificate(&identity).unwrap();
        assert_eq!(certificate_ed25519(&cert), Some(identity.ed25519_public()));
        assert!(peer_client_config(&identity).is_ok());
    }

    #[test]
    fn pinned_host_names_round_trip_and_nothing_else_parses() {
        let key = Identity::from_seed([4; 32]).ed25519_public();
        let ip = Ipv4Addr::new(127, 0, 12, 3);
        let host = pinned_host(ip, &key);
        assert!(host.split('.').all(|label| label.len() <= 63));
        assert!(ServerName::try_from(host.clone()).is_ok());
        assert_eq!(parse_pinned_host(&host), Some((ip, key)));
        for bad in [
            "127.0.0.1",
            "localhost",
            "1-2-3.aa.bb.snode",
            &host.replace(".snode", ".other"),
            &format!("{host}.x"),
            &host.replace("127-", "300-"),
            &host[..host.len() - 7],
        ] {
            assert_eq!(parse_pinned_host(bad), None, "{bad}");
        }
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
