//! The one JSON-RPC 2.0 client for an oxend-compatible directory (`POST …/json_rpc`, directory
//! spec §1), used by nodes, clients' seeds, the CLI, the devnet and the tests alike.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::view::{NetworkView, ViewError};

/// Largest answer read from a directory: 32 MiB. A `get_n_service_nodes` answer takes under
/// 1 KB per node, so this holds ten thousand nodes three times over.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// How long a call may take unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a directory call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The directory answered with a JSON-RPC error.
    #[error("directory error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// No usable answer (connection, HTTP or JSON failure).
    #[error("directory unreachable: {0}")]
    Transport(String),
    /// A `get_service_nodes` answer that is not a node list.
    #[error(transparent)]
    View(#[from] ViewError),
}

/// A JSON-RPC request as the directory reads it.
#[derive(Serialize)]
struct Request<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a Value,
}

/// A JSON-RPC answer: a `result` or an `error`.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// A directory endpoint (`http://host:port/json_rpc`), optionally with a bearer token (the
/// devnet directory's admin listener).
#[derive(Clone, Debug)]
pub struct DirectoryClient {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    timeout: Duration,
}

impl DirectoryClient {
    /// A client for `url` with its own HTTP client (the process's TLS provider installed if
    /// none is: an HTTP client cannot be built without one).
    pub fn new(url: impl Into<String>) -> Self {
        shallot_tls::install_crypto_provider();
        Self::with_http(reqwest::Client::new(), url)
    }

    /// A client for `url` sharing `http` (its connection pool, source address, proxy).
    pub fn with_http(http: reqwest::Client, url: impl Into<String>) -> Self {
        Self {
            http,
            url: url.into(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client authenticating with `token` (`Authorization: Bearer`).
    #[must_use]
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The same client with another per-call time limit.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method`; its `result` on success. The answer is read whatever the HTTP status
    /// (the directory sends JSON-RPC errors with 4xx statuses too).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let transport = |e: reqwest::Error| CallError::Transport(e.to_string());
        let mut request = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .json(&Request {
                jsonrpc: "2.0",
                id: 0,
                method,
                params: &params,
            });
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = crate::capped::read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let reply: Reply = serde_json::from_slice(&body)
            .map_err(|_| CallError::Transport(format!("HTTP {status}: the answer is not JSON")))?;
        if let Some(error) = reply.error {
            return Err(CallError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| error.to_string(), str::to_owned),
            });
        }
        reply
            .result
            .ok_or_else(|| CallError::Transport("the answer has no result".to_owned()))
    }

    /// The node list with the fields a storage server reads (directory spec §1.4), or `None`
    /// when the top block is still `known_hash` (`poll_block_hash`: nothing to re-parse).
    pub async fn service_nodes(
        &self,
        known_hash: Option<&str>,
    ) -> Result<Option<NetworkView>, CallError> {
        let mut params = serde_json::json!({
            "active_only": false,
            "fields": {"service_node_pubkey": true, "swarm_id": true, "storage_port": true,
                "public_ip": true, "height": true, "block_hash": true, "hardfork": true,
                "snode_revision": true, "funded": true, "pubkey_x25519": true,
                "pubkey_ed25519": true, "storage_lmq_port": true},
        });
        if let Some(hash) = known_hash.filter(|h| !h.is_empty()) {
            params["poll_block_hash"] = Value::from(hash);
        }
        let result = self.call("get_service_nodes", params).await?;
        if result.get("unchanged").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        Ok(Some(NetworkView::from_get_service_nodes(&result)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering `status` and `body`; the request it got comes back.
    async fn serve_once(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/json_rpc", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body of the announced length.
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_result_comes_back_and_the_request_carries_method_params_and_token() {
        let (url, server) = serve_once(
            "200 OK",
            r#"{"jsonrpc":"2.0","id":0,"result":{"height":7}}"#,
        )
        .await;
        let client = DirectoryClient::new(url).bearer("secret");
        let result = client
            .call("get_info", serde_json::json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(result["height"], 7);
        let request = server.await.unwrap();
        assert!(
            request.contains("authorization: Bearer secret"),
            "{request}"
        );
        assert!(request.contains(r#""method":"get_info""#), "{request}");
        assert!(request.contains(r#""params":{"a":1}"#), "{request}");
        assert!(request.contains(r#""jsonrpc":"2.0""#), "{request}");
    }

    #[tokio::test]
    async fn an_error_object_is_an_rpc_error_whatever_the_status() {
        let (url, _server) = serve_once(
            "401 Unauthorized",
            r#"{"jsonrpc":"2.0","id":0,"error":{"code":401,"message":"Unauthorized"}}"#,
        )
        .await;
        let error = DirectoryClient::new(url)
            .call("x", Value::Null)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            CallError::Rpc {
                code: 401,
                message: "Unauthorized".into()
            }
        );
    }

    #[tokio::test]
    async fn an_answer_without_result_or_not_json_is_a_transport_error() {
        let (url, _server) = serve_once("200 OK", r#"{"jsonrpc":"2.0","id":0}"#).await;
        let error = DirectoryClient::new(url)
            .call("x", Value::Null)
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::Transport(_)), "{error:?}");
        let (url, _server) = serve_once("502 Bad Gateway", "<html>").await;
        let error = DirectoryClient::new(url)
            .call("x", Value::Null)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CallError::Transport(m) if m.contains("502")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_unchanged_block_is_none_and_a_bad_list_is_a_view_error() {
        let (url, _server) = serve_once("200 OK", r#"{"result":{"unchanged":true}}"#).await;
        let client = DirectoryClient::new(url);
        assert!(client.service_nodes(Some("ab")).await.unwrap().is_none());
        let (url, _server) = serve_once("200 OK", r#"{"result":{"block_hash":"x"}}"#).await;
        let error = DirectoryClient::new(url)
            .service_nodes(None)
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::View(_)), "{error:?}");
    }
}
