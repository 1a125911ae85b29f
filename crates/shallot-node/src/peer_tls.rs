//! Node-to-node authentication by mutual TLS with node keys (see docs/node-protocol.md).
//!
//! A node connecting to a peer presents a client certificate whose key *is* its Ed25519 service
//! node key. The TLS 1.3 handshake signature proves possession of that key once per pooled
//! connection, so relayed onion hops and forwarded requests cost no per-request signature.
//! Ordinary clients connect without a certificate; the `/snode/` routes refuse them.

use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
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

/// A client certificate and key for connecting to peers as `identity` (PEM: cert then key).
pub fn client_identity_pem(identity: &Identity) -> Result<Vec<u8>, TlsError> {
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
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&key)?;
    let mut pem = cert.pem().into_bytes();
    pem.extend_from_slice(key.serialize_pem().as_bytes());
    Ok(pem)
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
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn client_certificate_carries_the_node_key() {
        let identity = Identity::from_seed([3; 32]);
        let pem = client_identity_pem(&identity).unwrap();
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(certificate_ed25519(&cert), Some(identity.ed25519_public()));
        assert!(PrivateKeyDer::from_pem_slice(&pem).is_ok());
    }
}
