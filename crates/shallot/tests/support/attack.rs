//! What a hostile host does to a node's listener, bounded in count and time and only ever
//! aimed at loopback: floods of idle connections, and requests that trickle in.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// Accepts the nodes' self-signed certificates, as Session clients do.
#[derive(Debug)]
pub struct AnyCert;

impl ServerCertVerifier for AnyCert {
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
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Raises this process's open-files soft limit to its hard limit, so a flood of a few thousand
/// sockets fits; returns the soft limit now in force.
pub fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// A TCP connection to `target` from the loopback address `from`.
pub async fn tcp_from(from: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A TLS connection to `target` from `from`, as a Session client makes it (HTTP/1.1 only, so a
/// test can write the request bytes itself).
pub async fn tls_from(from: Ipv4Addr, target: SocketAddr) -> TlsStream<TcpStream> {
    let mut config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tcp_from(from, target).await.expect("tcp connect");
    let name = ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

/// How long `stream` stayed open (until EOF or an error on read), waiting at most `limit`;
/// `None` if it was still open then. Anything the peer sends is read and dropped.
pub async fn open_for<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::from_std(since + limit);
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// What became of a flood of idle connections.
#[derive(Debug, Default)]
pub struct FloodReport {
    /// Connections the kernel completed (the node's listener may still close them at once).
    pub connected: usize,
    /// Connection attempts that failed (refused, timed out, or out of descriptors here).
    pub failed: usize,
    /// Connections closed by the node within a second: refused over a cap.
    pub closed_at_once: usize,
    /// Connections the node held longer, with how long each stayed open.
    pub held: Vec<Duration>,
    /// Connections still open when the flood gave up watching.
    pub still_open: usize,
}

/// Opens `count` TCP connections from `from` to `target`, sends nothing on them, and watches
/// each for up to `watch`: the slowloris of the TLS handshake, and the file-descriptor
/// exhaustion attack. Every socket is closed when this returns.
pub async fn idle_flood(
    from: Ipv4Addr,
    target: SocketAddr,
    count: usize,
    watch: Duration,
) -> FloodReport {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        tasks.spawn(async move {
            let mut stream = tcp_from(from, target).await.ok()?;
            let since = Instant::now();
            Some(open_for(&mut stream, since, watch).await)
        });
        // Pace the connects so the node's listen backlog never overflows: a connection the
        // kernel drops from a full backlog looks open to this side forever, though the node
        // never saw it (what a SYN flood does is the kernel's business: syncookies).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut report = FloodReport::default();
    while let Some(result) = tasks.join_next().await {
        match result.expect("flood task") {
            None => report.failed += 1,
            Some(None) => {
                report.connected += 1;
                report.still_open += 1;
            }
            Some(Some(open)) if open < Duration::from_secs(1) => {
                report.connected += 1;
                report.closed_at_once += 1;
            }
            Some(Some(open)) => {
                report.connected += 1;
                report.held.push(open);
            }
        }
    }
    report
}

/// Sends `lines` one at a time, `every` apart, on `stream`; returns how many were written
/// before the node closed the connection.
pub async fn trickle<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    lines: &[&[u8]],
    every: Duration,
) -> usize {
    for (sent, line) in lines.iter().enumerate() {
        if stream.write_all(line).await.is_err() || stream.flush().await.is_err() {
            return sent;
        }
        tokio::time::sleep(every).await;
    }
    lines.len()
}

/// Resident memory of process `pid` in KiB (from `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
