//! Where an account's or a node's secret seed lives on disk: one small JSON file in a data
//! directory, readable only by its owner (mode 0600, directory 0700), written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shallot_proto::Identity;
use zeroize::Zeroizing;

/// File name of a user's account key file inside the data directory.
pub const ACCOUNT_FILE: &str = "account.json";
/// File name of a service node's identity key file inside its data directory.
pub const NODE_KEY_FILE: &str = "node_key.json";
/// Environment variable that overrides the default data directory.
pub const HOME_ENV: &str = "SHALLOT_HOME";

/// Why the key store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No account has been created or restored in this data directory.
    #[error("no account in {path}; create one with `shallot account new` or restore one with `shallot account restore`")]
    NoAccount {
        /// The key file looked for.
        path: PathBuf,
    },
    /// An account already exists and would be overwritten.
    #[error("an account already exists in {path}; pass --force to replace it (its recovery phrase is the only way back to it)")]
    AlreadyExists {
        /// The existing key file.
        path: PathBuf,
    },
    /// The key file is readable or writable by other users.
    #[error("{path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file exists but is not a valid key file.
    #[error("{path} is not a valid Shallot account file: {reason}")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("could not {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No data directory was given and none could be determined for this user.
    #[error("cannot determine a data directory; pass --data-dir or set {HOME_ENV}")]
    NoDataDir,
}

/// On-disk form. The seed is 16 bytes (32 hex) for accounts with a recovery phrase, else 32 bytes.
#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct AccountFile {
    version: u32,
    seed: String,
}

/// A key file in a data directory: a user's account or a node's identity.
#[derive(Debug, Clone)]
pub struct AccountStore {
    dir: PathBuf,
    file: &'static str,
}

impl AccountStore {
    /// A user account store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            file: ACCOUNT_FILE,
        }
    }

    /// A service node's identity store in `dir`.
    pub fn node(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            file: NODE_KEY_FILE,
        }
    }

    /// The default data directory: `$SHALLOT_HOME`, else the platform data dir + `shallot`.
    pub fn default_dir() -> Result<PathBuf, KeystoreError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(home));
        }
        dirs::data_dir()
            .map(|d| d.join("shallot"))
            .ok_or(KeystoreError::NoDataDir)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key file's path.
    pub fn account_path(&self) -> PathBuf {
        self.dir.join(self.file)
    }

    /// Whether an account exists here.
    pub fn exists(&self) -> bool {
        self.account_path().exists()
    }

    /// Loads the key, refusing key files that other users can read.
    pub fn load(&self) -> Result<Identity, KeystoreError> {
        let path = self.account_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NoAccount { path })
            }
            Err(source) => {
                return Err(KeystoreError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        check_permissions(&path)?;
        let corrupt = |reason: &str| KeystoreError::Corrupt {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let file: AccountFile = serde_json::from_str(&text).map_err(|e| corrupt(&e.to_string()))?;
        if file.version != 1 {
            return Err(corrupt(&format!(
                "unsupported version {} (this build reads version 1)",
                file.version
            )));
        }
        let seed = Zeroizing::new(
            hex::decode(&file.seed).map_err(|_| corrupt("seed is not hexadecimal"))?,
        );
        match seed.len() {
            16 => {
                let mut short = Zeroizing::new([0u8; 16]);
                short.copy_from_slice(&seed);
                Ok(Identity::from_recovery_seed(&short))
            }
            32 => {
                let mut full = Zeroizing::new([0u8; 32]);
                full.copy_from_slice(&seed);
                Ok(Identity::from_seed(*full))
            }
            _ => Err(corrupt("seed must be 16 or 32 bytes")),
        }
    }

    /// Saves an account, atomically. Fails if one exists unless `overwrite` is set.
    pub fn save(&self, identity: &Identity, overwrite: bool) -> Result<(), KeystoreError> {
        let path = self.account_path();
        if !overwrite && path.exists() {
            return Err(KeystoreError::AlreadyExists { path });
        }
        create_private_dir(&self.dir)?;
        let seed = match identity.recovery_seed() {
            Some(short) => Zeroizing::new(hex::encode(*short)),
            None => Zeroizing::new(hex::encode(identity.seed())),
        };
        let file = AccountFile {
            version: 1,
            seed: seed.to_string(),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).unwrap_or_default());

        let tmp = self.dir.join(format!(".{}.tmp", self.file));
        let io = |action, source| KeystoreError::Io {
            action,
            path: tmp.clone(),
            source,
        };
        let mut out = open_private(&tmp).map_err(|e| io("create", e))?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.sync_all())
            .map_err(|e| io("write", e))?;
        drop(out);
        fs::rename(&tmp, &path).map_err(|source| KeystoreError::Io {
            action: "replace",
            path: path.clone(),
            source,
        })?;
        Ok(())
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), KeystoreError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeystoreError::Io {
            action: "create directory",
            path: dir.to_owned(),
            source,
        })
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), KeystoreError> {
    fs::create_dir_all(dir).map_err(|source| KeystoreError::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })
}

#[cfg(unix)]
#[allow(clippy::verbose_bit_mask)] // Permission bits read better as an octal mask.
fn check_permissions(path: &Path) -> Result<(), KeystoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| KeystoreError::Io {
            action: "inspect",
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 == 0 {
        Ok(())
    } else {
        Err(KeystoreError::InsecurePermissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        })
    }
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeystoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_gives_the_same_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path().join("nested"));
        assert!(matches!(store.load(), Err(KeystoreError::NoAccount { .. })));

        let id = Identity::generate(&mut rand_core::OsRng);
        store.save(&id, false).unwrap();
        assert_eq!(store.load().unwrap().session_id(), id.session_id());
        assert!(matches!(
            store.save(&id, false),
            Err(KeystoreError::AlreadyExists { .. })
        ));

        // A full 32-byte seed (no recovery phrase) is kept whole.
        let full = Identity::from_seed([9; 32]);
        store.save(&full, true).unwrap();
        assert_eq!(store.load().unwrap().seed(), full.seed());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_and_loose_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        store.save(&Identity::from_seed([1; 32]), false).unwrap();
        let path = store.account_path();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.load(),
            Err(KeystoreError::InsecurePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn corrupt_files_get_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        store.save(&Identity::from_seed([1; 32]), false).unwrap();
        for bad in [
            "not json",
            r#"{"version":2,"seed":"00"}"#,
            r#"{"version":1,"seed":"zz"}"#,
            r#"{"version":1,"seed":"0011"}"#,
        ] {
            fs::write(store.account_path(), bad).unwrap();
            assert!(
                matches!(store.load(), Err(KeystoreError::Corrupt { .. })),
                "{bad}"
            );
        }
    }
}
