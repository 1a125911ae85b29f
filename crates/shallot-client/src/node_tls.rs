//! TLS to service nodes the client connects to directly (guards, seed nodes): the node's
//! certificate must prove the Ed25519 key our node list gives for it.
//!
//! Shallot nodes serve a self-signed certificate whose key is their Ed25519 node key to every TLS
//! client that offers Ed25519 (docs/node-protocol.md). The client connects to a *pinned host*
//! name, `<ip with dashes>.<key hex, first half>.<key hex, second half>.snode`, which
//! [`PinnedResolver`] turns back into the IP (no DNS lookup) and [`NodeCertVerifier`] into the key
//! the certificate must carry. Any other host name (a seed URL, or a node addressed by IP when
//! verification is off for reference storage servers) is accepted without checks, as Session
//! clients do. The node-side twin of this module is `shallot_node::peer_tls`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use shallot_proto::Ed25519Pub;

/// Top-level label of pinned host names.
const PINNED_SUFFIX: &str = "snode";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The pinned host name of a node at `ip` with key `key`.
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

/// The Ed25519 key of a certificate, if it is an Ed25519 certificate.
pub fn certificate_ed25519(cert: &CertificateDer<'_>) -> Option<Ed25519Pub> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let raw = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    Ed25519Pub::from_slice(raw).ok()
}

/// Resolves pinned host names to their IP without any lookup; other names (seed URLs) go to the
/// system resolver.
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

/// For a pinned host name, accepts only an Ed25519 certificate for the key it names; for any
/// other name, accepts any certificate (self-signed node certificates, as Session clients do).
/// The handshake signature is always verified.
#[derive(Debug)]
pub struct NodeCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl NodeCertVerifier {
    /// A verifier using the ring provider's algorithms.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for NodeCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let expected = match server_name {
            ServerName::DnsName(name) => parse_pinned_host(name.as_ref()),
            _ => None,
        };
        let Some((_, expected)) = expected else {
            return Ok(ServerCertVerified::assertion());
        };
        if certificate_ed25519(end_entity) == Some(expected) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
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
        self.algorithms.supported_schemes()
    }
}

/// The rustls configuration of the client's HTTPS client (no client certificate).
pub fn client_config() -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(NodeCertVerifier::new())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_host_names_round_trip_and_nothing_else_parses() {
        let key = Ed25519Pub::from_bytes([0xab; 32]);
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let host = pinned_host(ip, &key);
        assert_eq!(
            host,
            format!("10-1-2-3.{}.{}.snode", "ab".repeat(16), "ab".repeat(16))
        );
        assert!(ServerName::try_from(host.clone()).is_ok());
        assert_eq!(parse_pinned_host(&host), Some((ip, key)));
        for bad in [
            "10.1.2.3",
            "seed1.example.org",
            &host.replace(".snode", ".org"),
            &host.replace("10-", "10-9-"),
            &format!("x.{host}"),
        ] {
            assert_eq!(parse_pinned_host(bad), None, "{bad}");
        }
    }
}
