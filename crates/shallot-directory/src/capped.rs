//! Reading an HTTP body with a size cap: a hostile server (a seed, a directory, a guard node)
//! could otherwise send an endless body and exhaust the reader's memory. The body is read chunk
//! by chunk and refused as soon as it passes the cap, or at once when `Content-Length` says so.

/// Why a capped body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the cap (announced or as sent).
    #[error("reply longer than the {cap}-byte limit")]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// The connection failed while reading.
    #[error("reading the reply: {0}")]
    Transport(String),
}

/// The body of `response`, at most `cap` bytes; longer fails with [`BodyError::TooLarge`]
/// having read no more than `cap` bytes plus one chunk.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let too_large = BodyError::TooLarge { cap };
    let announced = response.content_length().unwrap_or(0);
    if usize::try_from(announced).map_or(true, |n| n > cap) {
        return Err(too_large);
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(e.to_string()))?
    {
        if chunk.len() > cap - body.len() {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection HTTP server answering with `head` and then `body_chunks` chunks of 64 KiB
    /// (endless when `None`); returns its URL.
    async fn server(head: &'static str, body_chunks: Option<usize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..body_chunks.unwrap_or(usize::MAX) {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        url
    }

    async fn get(url: &str, cap: usize) -> Result<Vec<u8>, BodyError> {
        shallot_tls::install_crypto_provider();
        let response = reqwest::Client::new().get(url).send().await.unwrap();
        read_capped(response, cap).await
    }

    #[tokio::test]
    async fn an_endless_reply_is_cut_off_at_the_cap() {
        let url = server("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None).await;
        assert_eq!(
            get(&url, 1 << 20).await,
            Err(BodyError::TooLarge { cap: 1 << 20 })
        );
    }

    #[tokio::test]
    async fn an_announced_oversized_reply_is_refused_before_reading() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n";
        let url = server(head, Some(0)).await;
        assert_eq!(
            get(&url, 1 << 20).await,
            Err(BodyError::TooLarge { cap: 1 << 20 })
        );
    }

    #[tokio::test]
    async fn a_reply_up_to_the_cap_is_read_whole() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
        let url = server(head, Some(16)).await;
        assert_eq!(get(&url, 1 << 20).await.unwrap().len(), 1 << 20);
        let url = server("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", Some(16)).await;
        assert_eq!(get(&url, 1 << 20).await.unwrap().len(), 1 << 20);
    }
}
