//! The file server's HTTP API (attachments spec §3.4): which route a request names, the TTL
//! header, and the JSON bodies of replies. Shared by the server and its clients.

use serde::{Deserialize, Serialize};

use super::file_id::FileId;
use crate::onion::HttpMethod;

/// Request header asking for a lifetime in seconds (upload and extend).
pub const TTL_HEADER: &str = "x-fs-ttl";
/// Longest endpoint (path and query) the router looks at.
pub const MAX_ENDPOINT_LEN: usize = 1024;

/// A file server request, by route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /file`: store the body, answer [`UploadResponse`].
    Upload,
    /// `GET /file/{id}`: the raw blob.
    Download(FileId),
    /// `GET /file/{id}/info`: [`FileInfo`].
    Info(FileId),
    /// `POST /file/{id}/extend`: push the expiry out, answer [`FileInfo`].
    Extend(FileId),
}

/// Why no route matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No such path, or an id that cannot exist (404).
    #[error("not found")]
    NotFound,
    /// The path exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl Route {
    /// Routes `method endpoint`; a query string is ignored, as is one trailing `/`.
    pub fn parse(method: HttpMethod, endpoint: &str) -> Result<Self, RouteError> {
        if endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(RouteError::NotFound);
        }
        let path = endpoint.split_once('?').map_or(endpoint, |(path, _)| path);
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let mut segments = path
            .strip_prefix('/')
            .ok_or(RouteError::NotFound)?
            .split('/');
        let (Some("file"), id, action, None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(RouteError::NotFound);
        };
        let id = match id {
            None => {
                return if method == HttpMethod::Post {
                    Ok(Self::Upload)
                } else {
                    Err(RouteError::MethodNotAllowed)
                }
            }
            Some(id) => id.parse::<FileId>().map_err(|_| RouteError::NotFound)?,
        };
        match (action, method) {
            (None, HttpMethod::Get) => Ok(Self::Download(id)),
            (Some("info"), HttpMethod::Get) => Ok(Self::Info(id)),
            (Some("extend"), HttpMethod::Post) => Ok(Self::Extend(id)),
            (None | Some("info" | "extend"), _) => Err(RouteError::MethodNotAllowed),
            (Some(_), _) => Err(RouteError::NotFound),
        }
    }
}

/// The `X-FS-TTL` value is not a non-negative whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X-FS-TTL must be a whole number of seconds")]
pub struct InvalidTtl;

/// Parses an `X-FS-TTL` value: decimal seconds, at most 20 digits.
pub fn parse_ttl(value: &str) -> Result<u64, InvalidTtl> {
    let value = value.trim();
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidTtl);
    }
    value.parse().map_err(|_| InvalidTtl)
}

/// Reply to `POST /file`. Desktop refuses an upload whose reply lacks a numeric `expires`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The new file's id.
    pub id: String,
    /// When it expires, Unix seconds.
    pub expires: f64,
}

impl UploadResponse {
    /// The id, checked.
    pub fn file_id(&self) -> Result<FileId, super::file_id::InvalidFileId> {
        self.id.parse()
    }
}

/// Reply to `GET /file/{id}/info` and `POST /file/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Blob size in bytes.
    pub size: u64,
    /// When it was (last) uploaded, Unix seconds.
    pub uploaded: f64,
    /// When it expires, Unix seconds.
    pub expires: f64,
}

/// The body of an error reply: `{"status_code": N}`, plus (ours only) a reason a person can
/// read, such as the size limit an upload exceeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status repeated.
    pub status_code: u16,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        use HttpMethod::{Delete, Get, Post};
        let id = |s: &str| s.parse::<FileId>().unwrap();
        assert_eq!(Route::parse(Post, "/file"), Ok(Route::Upload));
        assert_eq!(Route::parse(Post, "/file/"), Ok(Route::Upload));
        assert_eq!(
            Route::parse(Get, "/file/ab_c"),
            Ok(Route::Download(id("ab_c")))
        );
        assert_eq!(
            Route::parse(Get, "/file/abc/?x=1"),
            Ok(Route::Download(id("abc")))
        );
        assert_eq!(
            Route::parse(Get, "/file/abc/info"),
            Ok(Route::Info(id("abc")))
        );
        assert_eq!(
            Route::parse(Post, "/file/abc/extend"),
            Ok(Route::Extend(id("abc")))
        );
        assert_eq!(
            Route::parse(Get, "/file"),
            Err(RouteError::MethodNotAllowed)
        );
        assert_eq!(
            Route::parse(Delete, "/file/abc"),
            Err(RouteError::MethodNotAllowed)
        );
        for missing in [
            "",
            "/",
            "/files/1",
            "/file/a.b",
            "/file/a/b/c",
            "/file//info",
            "file",
        ] {
            assert_eq!(
                Route::parse(Get, missing),
                Err(RouteError::NotFound),
                "{missing}"
            );
        }
        assert_eq!(parse_ttl(" 60 "), Ok(60));
        for bad in ["", "-1", "1.5", "1e3", "99999999999999999999999"] {
            assert_eq!(parse_ttl(bad), Err(InvalidTtl), "{bad}");
        }
    }
}
