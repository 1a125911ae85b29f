//! What each file server route does (attachments spec §3.4), independent of how the request
//! arrived: plain HTTP and onion v4 requests both end here, and get the same statuses, headers
//! and bodies.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use shallot_proto::attachment::server_api::{
    parse_ttl, ErrorBody, FileInfo, Route, RouteError, UploadResponse,
};
use shallot_proto::attachment::FileId;

use crate::store::{FileMeta, Store, StoreError};
use shallot_clock::Clock;

/// A reply, before it is written as HTTP or sealed into a v4 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names, no `content-length`).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    fn json<T: Serialize>(status: u16, value: &T) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: serde_json::to_vec(value).map_or_else(|_| Bytes::new(), Bytes::from),
        }
    }

    /// An error: `{"status_code": N, "error": "…"}` with the same HTTP status.
    pub fn error(status: u16, error: impl Into<Option<String>>) -> Self {
        Self::json(
            status,
            &ErrorBody {
                status_code: status,
                error: error.into(),
            },
        )
    }
}

/// The routes' behaviour over a [`Store`].
pub struct Service {
    /// Blob and metadata storage.
    pub store: Arc<Store>,
    /// Time for expiry.
    pub clock: Arc<dyn Clock>,
    /// Largest blob accepted.
    pub max_file_size: usize,
    /// Lifetime without `X-FS-TTL`, seconds.
    pub default_ttl_secs: u64,
    /// Largest `X-FS-TTL`, seconds.
    pub max_ttl_secs: u64,
}

impl Service {
    /// Handles one request: `route` as parsed from method and endpoint, the `X-FS-TTL` header if
    /// sent, and the body.
    pub async fn handle(
        self: &Arc<Self>,
        route: Result<Route, RouteError>,
        ttl: Option<&str>,
        body: Bytes,
    ) -> Reply {
        let route = match route {
            Ok(route) => route,
            Err(RouteError::NotFound) => return Reply::error(404, None),
            Err(RouteError::MethodNotAllowed) => return Reply::error(405, None),
        };
        let ttl_secs = match ttl.map(parse_ttl) {
            None => self.default_ttl_secs,
            Some(Ok(ttl)) if ttl <= self.max_ttl_secs => ttl,
            Some(_) => {
                return Reply::error(
                    400,
                    format!(
                        "X-FS-TTL must be whole seconds from 0 to {}",
                        self.max_ttl_secs
                    ),
                )
            }
        };
        let ttl_ms = ttl_secs.saturating_mul(1000);
        match route {
            Route::Upload => self.upload(body, ttl_ms).await,
            Route::Download(id) => self.download(id).await,
            Route::Info(id) => {
                let (store, now) = (self.store.clone(), self.clock.now_ms());
                blocking(move || store.info(&id, now)).await.map_or_else(
                    |reply| reply,
                    |meta| meta.map_or_else(|| Reply::error(404, None), |m| info(&m)),
                )
            }
            Route::Extend(id) => {
                let (store, now) = (self.store.clone(), self.clock.now_ms());
                blocking(move || store.extend(&id, now, ttl_ms))
                    .await
                    .map_or_else(
                        |reply| reply,
                        |meta| meta.map_or_else(|| Reply::error(404, None), |m| info(&m)),
                    )
            }
        }
    }

    async fn upload(self: &Arc<Self>, body: Bytes, ttl_ms: u64) -> Reply {
        if body.is_empty() {
            return Reply::error(413, "empty upload".to_owned());
        }
        if body.len() > self.max_file_size {
            return Reply::error(413, too_large(body.len(), self.max_file_size));
        }
        let (store, now) = (self.store.clone(), self.clock.now_ms());
        match blocking(move || store.put(&body, now, ttl_ms)).await {
            Ok((id, meta)) => Reply::json(
                200,
                &UploadResponse {
                    id: id.to_string(),
                    expires: seconds(meta.expires_ms),
                },
            ),
            Err(reply) => reply,
        }
    }

    async fn download(self: &Arc<Self>, id: FileId) -> Reply {
        let (store, now) = (self.store.clone(), self.clock.now_ms());
        match blocking(move || store.get(&id, now)).await {
            Ok(Some((bytes, meta))) => Reply {
                status: 200,
                headers: vec![
                    ("content-type", "application/octet-stream".to_owned()),
                    (
                        "expires",
                        httpdate::fmt_http_date(
                            UNIX_EPOCH + Duration::from_millis(meta.expires_ms),
                        ),
                    ),
                ],
                body: Bytes::from(bytes),
            },
            Ok(None) => Reply::error(404, None),
            Err(reply) => reply,
        }
    }
}

/// The 413 text: what was sent and what is allowed.
pub fn too_large(size: usize, limit: usize) -> String {
    format!("file too large: {size} bytes; this server accepts at most {limit} bytes")
}

fn info(meta: &FileMeta) -> Reply {
    Reply::json(
        200,
        &FileInfo {
            size: meta.size,
            uploaded: seconds(meta.uploaded_ms),
            expires: seconds(meta.expires_ms),
        },
    )
}

#[allow(clippy::cast_precision_loss)] // Milliseconds since 1970 fit a double exactly.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Runs a store operation on a blocking thread; a failure becomes its error reply.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Reply> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(StoreError::Full)) => Err(Reply::error(
            507,
            "the file server is out of storage space".to_owned(),
        )),
        Ok(Err(error)) => {
            tracing::error!(%error, "file store failed");
            Err(Reply::error(500, None))
        }
        Err(_) => Err(Reply::error(500, None)),
    }
}
