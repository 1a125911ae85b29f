//! The server's key: an Ed25519 seed generated on first start and kept in `key_ed25519` (mode
//! 0600) in the data directory. Clients name the server by its Ed25519 key (`#p=` in URLs) and
//! encrypt onion requests to its X25519 form, as they do for Session's own file server.

use std::fs;
use std::io::Write;
use std::path::Path;

use rand_core::{OsRng, RngCore};
use shallot_proto::onion::X25519Keypair;
use shallot_proto::{Ed25519Pub, Identity, X25519Pub};
use zeroize::Zeroizing;

/// File name of the seed inside the data directory.
pub const KEY_FILE: &str = "key_ed25519";

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The key file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a 32-byte seed.
    #[error("{0} is not a 32-byte key file")]
    Malformed(String),
}

/// The server's keys.
pub struct ServerKeys {
    ed25519: Ed25519Pub,
    x25519: X25519Keypair,
}

impl ServerKeys {
    /// Loads the seed from `dir`, or creates it (readable by the owner only) if absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let shown = path.display().to_string();
        let io = |action| {
            let shown = shown.clone();
            move |source| KeyError::Io {
                action,
                path: shown,
                source,
            }
        };
        let seed: Zeroizing<[u8; 32]> = match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Zeroizing::new(
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyError::Malformed(shown.clone()))?,
                )
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(seed.as_mut());
                write_private(&path, seed.as_ref()).map_err(io("creating"))?;
                seed
            }
            Err(error) => return Err(io("reading")(error)),
        };
        Ok(Self::from_seed(*seed))
    }

    /// Keys from a known seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let identity = Identity::from_seed(seed);
        Self {
            ed25519: identity.ed25519_public(),
            x25519: X25519Keypair::from_secret(identity.x25519_secret().clone()),
        }
    }

    /// The Ed25519 key clients put in URLs (`#p=`).
    pub const fn ed25519(&self) -> Ed25519Pub {
        self.ed25519
    }

    /// The X25519 key onion requests are encrypted to.
    pub fn x25519(&self) -> X25519Pub {
        *self.x25519.public()
    }

    /// The X25519 keypair that decrypts onion requests.
    pub fn keypair(&self) -> &X25519Keypair {
        &self.x25519
    }
}

/// Writes a new file that only its owner can read (0600 on Unix), failing if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
