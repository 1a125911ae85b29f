//! Signed evidence nodes send to the directory: uptime proofs (heartbeats, spec §4.5/§7.6) and
//! reachability reports (§1.6). Each is signed with the sender's Ed25519 key over a canonical
//! bencoded dict of its fields, so the directory can reject forgeries.

use std::fmt;
use std::net::Ipv4Addr;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shallot_proto::Ed25519Pub;

/// A detached Ed25519 signature, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({})", hex::encode(self.0))
    }
}

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

fn verify(key: &Ed25519Pub, message: &[u8], sig: &Sig) -> bool {
    key.verify(message, &ed25519_dalek::Signature::from_bytes(&sig.0))
}

/// Minimal bencode writer for the canonical signed encodings (the caller passes dict keys
/// sorted, as bencode requires). Hand-rolled: five lines per type, no parser needed.
#[derive(Default, Debug)]
pub struct Bencode(pub Vec<u8>);

impl Bencode {
    /// Appends a byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b.len().to_string().as_bytes());
        self.0.push(b':');
        self.0.extend_from_slice(b);
        self
    }
    /// Appends an integer.
    pub fn int(&mut self, v: u64) -> &mut Self {
        self.0.push(b'i');
        self.0.extend_from_slice(v.to_string().as_bytes());
        self.0.push(b'e');
        self
    }
    /// Appends a version triple as a list of integers.
    pub fn version(&mut self, v: [u16; 3]) -> &mut Self {
        self.0.push(b'l');
        for part in v {
            self.int(u64::from(part));
        }
        self.0.push(b'e');
        self
    }
}

/// Opens a dict (`d`), a list (`l`) or closes one (`e`).
impl Bencode {
    /// Appends a raw marker byte (`b'd'`, `b'l'` or `b'e'`).
    pub fn mark(&mut self, marker: u8) -> &mut Self {
        self.0.push(marker);
        self
    }
}

/// An uptime proof's fields (§4.5 key names; `pk` is omitted because Shallot nodes' primary key
/// is their Ed25519 key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Public IPv4 address.
    pub ip: Ipv4Addr,
    /// Lokinet version.
    pub lv: [u16; 3],
    /// The node's Ed25519 (= primary) key.
    pub pke: Ed25519Pub,
    /// Quorumnet port.
    pub q: u16,
    /// Storage server HTTPS port.
    pub shp: u16,
    /// Storage server OMQ/QUIC port.
    pub sop: u16,
    /// Storage server version.
    pub sv: [u16; 3],
    /// Unix time the proof was made (seconds).
    pub t: u64,
    /// Node ("oxend") version.
    pub v: [u16; 3],
}

impl Heartbeat {
    /// The canonical bytes that are signed: the bencoded dict of the fields, keys sorted.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut b = Bencode::default();
        b.0.push(b'd');
        b.bytes(b"ip").bytes(self.ip.to_string().as_bytes());
        b.bytes(b"lv").version(self.lv);
        b.bytes(b"pke").bytes(self.pke.as_bytes());
        b.bytes(b"q").int(u64::from(self.q));
        b.bytes(b"shp").int(u64::from(self.shp));
        b.bytes(b"sop").int(u64::from(self.sop));
        b.bytes(b"sv").version(self.sv);
        b.bytes(b"t").int(self.t);
        b.bytes(b"v").version(self.v);
        b.0.push(b'e');
        b.0
    }

    /// Signs the proof with the node's key (whose public half must be `pke`).
    pub fn sign(self, key: &SigningKey) -> SignedHeartbeat {
        let signature = Sig(key.sign(&self.signing_bytes()).to_bytes());
        SignedHeartbeat {
            heartbeat: self,
            signature,
        }
    }
}

/// An uptime proof with its signature; the JSON form is the fields plus `signature`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeartbeat {
    /// The proof.
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    /// Ed25519 signature by `pke` over [`Heartbeat::signing_bytes`].
    pub signature: Sig,
}

impl SignedHeartbeat {
    /// Whether the signature is valid for the proof's own key.
    pub fn verify(&self) -> bool {
        verify(
            &self.heartbeat.pke,
            &self.heartbeat.signing_bytes(),
            &self.signature,
        )
    }
}

/// Which test a reachability report is about (`type` of `report_peer_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// Storage-server reachability (old alias `reachability`).
    #[serde(alias = "reachability")]
    Storage,
    /// Lokinet reachability.
    Lokinet,
}

impl TestKind {
    fn name(self) -> &'static [u8] {
        match self {
            Self::Storage => b"storage",
            Self::Lokinet => b"lokinet",
        }
    }
}

/// One node's test result about another (`report_peer_status` params plus the devnet's
/// authentication: the reporter's key and a timestamp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerReport {
    /// What was tested.
    #[serde(rename = "type")]
    pub kind: TestKind,
    /// The tested node.
    pub pubkey: Ed25519Pub,
    /// Whether the test passed.
    pub passed: bool,
    /// The reporting node (must be an active member).
    pub reporter: Ed25519Pub,
    /// Unix time of the report (seconds).
    pub t: u64,
}

impl PeerReport {
    /// Canonical signed bytes: bencoded dict `{k, p, pk, r, t}`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut b = Bencode::default();
        b.0.push(b'd');
        b.bytes(b"k").bytes(self.kind.name());
        b.bytes(b"p").int(u64::from(self.passed));
        b.bytes(b"pk").bytes(self.pubkey.as_bytes());
        b.bytes(b"r").bytes(self.reporter.as_bytes());
        b.bytes(b"t").int(self.t);
        b.0.push(b'e');
        b.0
    }

    /// Signs the report with the reporter's key.
    pub fn sign(self, key: &SigningKey) -> SignedReport {
        let signature = Sig(key.sign(&self.signing_bytes()).to_bytes());
        SignedReport {
            report: self,
            signature,
        }
    }
}

/// A reachability report with its signature; JSON = the fields plus `signature`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReport {
    /// The report.
    #[serde(flatten)]
    pub report: PeerReport,
    /// Ed25519 signature by `reporter` over [`PeerReport::signing_bytes`].
    pub signature: Sig,
}

impl SignedReport {
    /// Whether the signature is valid for the reporter's key.
    pub fn verify(&self) -> bool {
        verify(
            &self.report.reporter,
            &self.report.signing_bytes(),
            &self.signature,
        )
    }
}

/// A `storage_server_ping` / `lokinet_ping` with the devnet's authentication: the node's
/// key, a timestamp and its signature. (An oxend takes pings only from its own local storage
/// server; a devnet directory is remote, so it checks who is pinging.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Storage-server (or lokinet) version.
    #[serde(default)]
    pub version: [u16; 3],
    /// The pinging node's Ed25519 key, hex.
    pub pubkey_ed25519: Ed25519Pub,
    /// Empty, or what is wrong (then the directory zeroes the node's last ping time).
    #[serde(default)]
    pub error: String,
    /// HTTPS port.
    #[serde(default)]
    pub https_port: u16,
    /// OMQ/QUIC port.
    #[serde(default)]
    pub omq_port: u16,
    /// Unix time of the ping (seconds).
    pub t: u64,
}

impl Ping {
    /// Canonical signed bytes: bencoded `{e, hp, m, op, pk, t, v}` where `m` is the method
    /// (`storage_server_ping` or `lokinet_ping`), so one cannot stand for the other.
    pub fn signing_bytes(&self, method: &str) -> Vec<u8> {
        let mut b = Bencode::default();
        b.mark(b'd');
        b.bytes(b"e").bytes(self.error.as_bytes());
        b.bytes(b"hp").int(u64::from(self.https_port));
        b.bytes(b"m").bytes(method.as_bytes());
        b.bytes(b"op").int(u64::from(self.omq_port));
        b.bytes(b"pk").bytes(self.pubkey_ed25519.as_bytes());
        b.bytes(b"t").int(self.t);
        b.bytes(b"v").version(self.version);
        b.mark(b'e');
        b.0
    }

    /// Signs the ping for `method` with the node's key.
    pub fn sign(self, method: &str, key: &SigningKey) -> SignedPing {
        let signature = Sig(key.sign(&self.signing_bytes(method)).to_bytes());
        SignedPing {
            ping: self,
            signature,
        }
    }
}

/// A ping with its signature; JSON = the oxend ping params plus `t` and `signature`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPing {
    /// The ping.
    #[serde(flatten)]
    pub ping: Ping,
    /// Ed25519 signature by `pubkey_ed25519` over [`Ping::signing_bytes`].
    pub signature: Sig,
}

impl SignedPing {
    /// Whether the signature is valid for `method` and the ping's own key.
    pub fn verify(&self, method: &str) -> bool {
        verify(
            &self.ping.pubkey_ed25519,
            &self.ping.signing_bytes(method),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn heartbeat(k: &SigningKey) -> Heartbeat {
        Heartbeat {
            ip: Ipv4Addr::LOCALHOST,
            lv: [0, 9, 11],
            pke: Ed25519Pub::from_bytes(k.verifying_key().to_bytes()),
            q: 1,
            shp: 2,
            sop: 3,
            sv: [2, 8, 0],
            t: 1_700_000_000,
            v: [10, 6, 0],
        }
    }

    #[test]
    fn heartbeat_encoding_is_sorted_bencode() {
        let hb = heartbeat(&key(1));
        let bytes = hb.signing_bytes();
        assert!(bytes.starts_with(b"d2:ip9:127.0.0.12:lvli0ei9ei11ee3:pke32:"));
        assert!(bytes.ends_with(b"1:ti1700000000e1:vli10ei6ei0eee"));
    }

    #[test]
    fn signatures_verify_and_tampering_is_detected() {
        let k = key(1);
        let signed = heartbeat(&k).sign(&k);
        assert!(signed.verify());
        let mut tampered = signed.clone();
        tampered.heartbeat.shp = 9;
        assert!(!tampered.verify());
        let forged = heartbeat(&k).sign(&key(2));
        assert!(!forged.verify());
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(json["ip"], "127.0.0.1");
        let back: SignedHeartbeat = serde_json::from_value(json).unwrap();
        assert_eq!(back, signed);

        let report = PeerReport {
            kind: TestKind::Storage,
            pubkey: Ed25519Pub::from_bytes([5; 32]),
            passed: false,
            reporter: signed.heartbeat.pke,
            t: 5,
        }
        .sign(&k);
        assert!(report.verify());
        let mut flipped = report.clone();
        flipped.report.passed = true;
        assert!(!flipped.verify());
    }

    #[test]
    fn pings_are_bound_to_their_method_and_fields() {
        let k = key(3);
        let ping = Ping {
            version: [2, 8, 0],
            pubkey_ed25519: Ed25519Pub::from_bytes(k.verifying_key().to_bytes()),
            error: String::new(),
            https_port: 443,
            omq_port: 0,
            t: 77,
        }
        .sign("storage_server_ping", &k);
        assert!(ping.verify("storage_server_ping"));
        assert!(!ping.verify("lokinet_ping"));
        let json = serde_json::to_value(&ping).unwrap();
        assert_eq!(json["https_port"], 443);
        let back: SignedPing = serde_json::from_value(json).unwrap();
        assert_eq!(back, ping);
        let mut moved = ping.clone();
        moved.ping.https_port = 444;
        assert!(!moved.verify("storage_server_ping"));
        let forged = ping.ping.clone().sign("storage_server_ping", &key(4));
        assert!(!forged.verify("storage_server_ping"));
    }
}
