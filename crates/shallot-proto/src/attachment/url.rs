//! File server URLs (attachments spec §3.2):
//! `{http|https}://{host}[:{port}]/file/{id}[#fragment]`, the fragment an `&`-joined list of
//! `p=<server Ed25519 key, hex>` (absent for the default server) and `d` (S-scheme blob).
//!
//! Read leniently, written one way: the legacy `/files/{id}` path and a trailing `/` are read,
//! `d=` (desktop) and `d` (libsession) both mark the S scheme, `sr=` and unknown entries are
//! ignored; we write `/file/{id}`, `p=` first, then a bare `d`.

use std::fmt;
use std::str::FromStr;

use super::file_id::FileId;
use crate::identity::{Ed25519Pub, IdError, X25519Pub};
use crate::onion::routing::is_valid_host;
use crate::onion::{ProxyProtocol, ServerDestination};

/// Longest URL accepted (the profile-picture config field holds at most 223 characters).
pub const MAX_URL_LEN: usize = 512;

/// A file's download URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileUrl {
    /// `http` or `https`.
    pub protocol: ProxyProtocol,
    /// Host name or address (IPv6 in brackets).
    pub host: String,
    /// Port, when not the scheme's default.
    pub port: Option<u16>,
    /// The file's id on that server.
    pub id: FileId,
    /// The server's Ed25519 key (`p=`); `None` means the client's default file server.
    pub server_ed25519: Option<Ed25519Pub>,
    /// Whether the blob uses the S scheme (`d`).
    pub stream: bool,
}

/// Why a URL is not a file URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL too long")]
    TooLong,
    /// Not `http://` or `https://`.
    #[error("URL scheme must be http or https")]
    Scheme,
    /// The host or port is malformed.
    #[error("invalid host or port in URL")]
    Host,
    /// The path is not `/file/<id>` (or `/files/<id>`).
    #[error("URL path is not /file/<id>")]
    Path,
    /// The `p=` key is not 64 hex characters.
    #[error("invalid server key in URL: {0}")]
    ServerKey(#[from] IdError),
}

impl FileUrl {
    /// The port the last hop connects to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.protocol.default_port())
    }

    /// The server's X25519 key: converted from `p=` (as desktop and Android do), else `default`.
    pub fn server_x25519(&self, default: X25519Pub) -> Result<X25519Pub, IdError> {
        self.server_ed25519
            .map_or(Ok(default), |key| key.to_x25519())
    }

    /// Where onion requests for this file go, given the X25519 key of the default server.
    pub fn destination(&self, default: X25519Pub) -> Result<ServerDestination, IdError> {
        Ok(ServerDestination {
            host: self.host.clone(),
            protocol: self.protocol,
            port: Some(self.effective_port()),
            x25519: self.server_x25519(default)?,
        })
    }

    /// The v4 endpoint that downloads this file.
    pub fn download_endpoint(&self) -> String {
        format!("/file/{}", self.id)
    }
}

impl FromStr for FileUrl {
    type Err = UrlError;
    fn from_str(url: &str) -> Result<Self, UrlError> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let (protocol, rest) = if let Some(rest) = strip_prefix_ci(url, "http://") {
            (ProxyProtocol::Http, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "https://") {
            (ProxyProtocol::Https, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (authority, path) = rest.split_at(rest.find('/').ok_or(UrlError::Path)?);
        let (host, port) = split_authority(authority)?;
        let port = port.filter(|&p| p != protocol.default_port());
        let path = path.strip_suffix('/').unwrap_or(path);
        let id = path
            .strip_prefix("/file/")
            .or_else(|| path.strip_prefix("/files/"))
            .ok_or(UrlError::Path)?
            .parse::<FileId>()
            .map_err(|_| UrlError::Path)?;
        let mut server_ed25519 = None;
        let mut stream = false;
        for entry in fragment.split('&') {
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            match name {
                "d" => stream = true,
                "p" => server_ed25519 = Some(value.parse()?),
                _ => {}
            }
        }
        Ok(Self {
            protocol,
            host: host.to_owned(),
            port,
            id,
            server_ed25519,
            stream,
        })
    }
}

impl fmt::Display for FileUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.protocol, self.host)?;
        if let Some(port) = self.port.filter(|&p| p != self.protocol.default_port()) {
            write!(f, ":{port}")?;
        }
        write!(f, "/file/{}", self.id)?;
        match (self.server_ed25519, self.stream) {
            (Some(key), true) => write!(f, "#p={key}&d"),
            (Some(key), false) => write!(f, "#p={key}"),
            (None, true) => f.write_str("#d"),
            (None, false) => Ok(()),
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `host[:port]` (IPv6 as `[addr][:port]`), checking both.
fn split_authority(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    None => return Err(UrlError::Host),
                }
            }
            None => return Err(UrlError::Host),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if !is_valid_host(host) {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => None,
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Some(text.parse::<u16>().map_err(|_| UrlError::Host)?)
        }
        Some(_) => return Err(UrlError::Host),
    };
    if port == Some(0) {
        return Err(UrlError::Host);
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        let url: FileUrl = "HTTP://[::1]:8080/file/abc#d=&sr=x".parse().unwrap();
        assert_eq!(url.host, "[::1]");
        assert_eq!(url.port, Some(8080));
        assert!(url.stream);
        assert_eq!(url.to_string(), "http://[::1]:8080/file/abc#d");
        for bad in [
            "ftp://a/file/x",
            "http://a/file/",
            "http://a/file/x/y",
            "http://a:0/file/x",
            "http://a:99999/file/x",
            "http://a:/file/x",
            "http://a b/file/x",
            "http://a/file/x?y",
            "http://a/file/x#p=zz",
            "http://a",
            "http://[::1/file/x",
        ] {
            assert!(bad.parse::<FileUrl>().is_err(), "{bad}");
        }
    }
}
