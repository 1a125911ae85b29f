//! How a Shallot node is named and recognised over TLS, shared by nodes (peers, reachability
//! testers) and clients (guards, seed nodes).
//!
//! Every Shallot node serves a self-signed certificate whose key is its Ed25519 node key
//! (docs/node-protocol.md). Whoever connects to a listed node uses a *pinned host* name,
//! `<ip with dashes>.<key hex, first half>.<key hex, second half>.snode`: [`PinnedResolver`] turns
//! it back into the IP (no DNS lookup) and [`PinnedVerifier`] into the key the certificate must
//! carry. No certificate authority is involved.

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

/// Installs the process-wide rustls crypto provider (ring) once; later calls do nothing.
/// Every TLS user in Shallot calls this, so the choice of provider lives in one place.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The signature algorithms every Shallot verifier checks handshakes with.
fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// The pinned host name of a node at `ip` with key `key` (each label at most 63 characters).
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

/// What a [`PinnedVerifier`] does with a server reached by a name that pins no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpinned {
    /// Accept any certificate: a client reaching a seed by URL, or a reference storage server
    /// by IP, as Session clients do.
    Accept,
    /// Refuse: a node talks only to listed nodes, by pinned name.
    Refuse,
}

/// For a pinned host name, accepts only an Ed25519 certificate for the key it names; other names
/// as [`Unpinned`] says. The handshake signature is always verified.
#[derive(Debug)]
pub struct PinnedVerifier {
    unpinned: Unpinned,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    /// A verifier with the given policy for names that pin no key.
    pub fn new(unpinned: Unpinned) -> Arc<Self> {
        Arc::new(Self {
            unpinned,
            algorithms: algorithms(),
        })
    }
}

impl ServerCertVerifier for PinnedVerifier {
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
            return match self.unpinned {
                Unpinned::Accept => Ok(ServerCertVerified::assertion()),
                Unpinned::Refuse => Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                )),
            };
        };
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
        match self.unpinned {
            // Unpinned servers may hold any kind of certificate.
            Unpinned::Accept => self.algorithms.supported_schemes(),
            // Only Ed25519: a node serves its Ed25519 certificate to clients that offer it alone.
            Unpinned::Refuse => vec![SignatureScheme::ED25519],
        }
    }
}

/// A rustls client configuration (HTTP/2 and HTTP/1.1, no client certificate) that holds
/// pinned names to their keys and treats other names as `unpinned` says.
pub fn client_config(unpinned: Unpinned) -> rustls::ClientConfig {
    install_crypto_provider();
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(PinnedVerifier::new(unpinned))
        .with_no_client_auth();
    config.alpn_protocols = alpn();
    config
}

/// The ALPN protocols Shallot's HTTPS clients offer: HTTP/2, then HTTP/1.1.
pub fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
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
        assert!(host.split('.').all(|label| label.len() <= 63));
        assert!(ServerName::try_from(host.clone()).is_ok());
        assert_eq!(parse_pinned_host(&host), Some((ip, key)));
        for bad in [
            "10.1.2.3",
            "localhost",
            "seed1.example.org",
            "1-2-3.aa.bb.snode",
            &host.replace(".snode", ".org"),
            &host.replace("10-", "10-9-"),
            &host.replace("10-", "300-"),
            &format!("x.{host}"),
            &format!("{host}.x"),
            &host[..host.len() - 7],
        ] {
            assert_eq!(parse_pinned_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn unpinned_names_follow_the_policy() {
        let cert = CertificateDer::from(vec![0u8; 8]);
        let name = ServerName::try_from("seed1.example.org").unwrap();
        let verify = |unpinned| {
            PinnedVerifier::new(unpinned).verify_server_cert(
                &cert,
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify(Unpinned::Accept).is_ok());
        assert!(verify(Unpinned::Refuse).is_err());
        // A pinned name with a certificate that is not Ed25519: refused under either policy.
        let pinned = ServerName::try_from(pinned_host(
            Ipv4Addr::LOCALHOST,
            &Ed25519Pub::from_bytes([1; 32]),
        ))
        .unwrap();
        for unpinned in [Unpinned::Accept, Unpinned::Refuse] {
            let verdict = PinnedVerifier::new(unpinned).verify_server_cert(
                &cert,
                &[],
                &pinned,
                &[],
                UnixTime::now(),
            );
            assert!(verdict.is_err());
        }
    }
}
