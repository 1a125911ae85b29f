//! What the client keeps about the network: retrieve cursors and sealed JSON snapshots (node
//! pool, guards, swarms, config state).

use rusqlite::{params, OptionalExtension};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{AccountId, Ed25519Pub, Namespace};

use super::{aad, Db, DbError};
use crate::pool::{PoolSnapshot, SnapshotNode};

impl Db {
    /// The retrieve cursor for (node, account, namespace). A cursor that does not read as a hash
    /// counts as none: the next retrieve starts from the beginning and dedup drops repeats.
    pub fn last_hash(
        &self,
        node: &Ed25519Pub,
        account: &AccountId,
        namespace: Namespace,
    ) -> Result<Option<MessageHash>, DbError> {
        let hash: Option<String> = self
            .conn
            .query_row(
                "SELECT hash FROM last_hashes WHERE node = ?1 AND account = ?2 AND namespace = ?3",
                params![node.to_hex(), account.to_hex(), namespace.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok(hash.and_then(|h| h.parse().ok()))
    }

    /// Moves the retrieve cursor for (node, account, namespace) to `hash`.
    pub fn set_last_hash(
        &self,
        node: &Ed25519Pub,
        account: &AccountId,
        namespace: Namespace,
        hash: &MessageHash,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO last_hashes (node, account, namespace, hash)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                node.to_hex(),
                account.to_hex(),
                namespace.0,
                hash.to_string()
            ],
        )?;
        Ok(())
    }

    pub(super) fn save_snapshot(&self, name: &str, json: &[u8]) -> Result<(), DbError> {
        let sealed = self.seal(&aad("snapshots", "data", name), json);
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshots (name, data) VALUES (?1, ?2)",
            params![name, sealed],
        )?;
        Ok(())
    }

    pub(super) fn load_snapshot<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DbError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM snapshots WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let json = self.open_value(&aad("snapshots", "data", name), &sealed)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|_| DbError::Corrupt(format!("snapshot {name}")))
    }

    /// Saves `value` as sealed JSON under `name` (replacing what was there).
    pub fn save_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), DbError> {
        let json = serde_json::to_vec(value).map_err(|_| DbError::Corrupt(name.to_owned()))?;
        self.save_snapshot(name, &json)
    }

    /// The sealed JSON value saved under `name`, if any.
    pub fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DbError> {
        self.load_snapshot(name)
    }

    /// Saves the node pool (to start without a seed next time).
    pub fn save_pool(&self, pool: &PoolSnapshot) -> Result<(), DbError> {
        let json = serde_json::to_vec(pool).map_err(|_| DbError::Corrupt("pool".into()))?;
        self.save_snapshot("pool", &json)
    }

    /// The saved node pool, if any.
    pub fn load_pool(&self) -> Result<Option<PoolSnapshot>, DbError> {
        self.load_snapshot("pool")
    }

    /// Saves the cached swarm of `account`.
    pub fn save_swarm(&self, account: &AccountId, members: &[SnapshotNode]) -> Result<(), DbError> {
        let json = serde_json::to_vec(members).map_err(|_| DbError::Corrupt("swarm".into()))?;
        self.save_snapshot(&format!("swarm:{}", account.to_hex()), &json)
    }

    /// The saved swarm of `account`, if any.
    pub fn load_swarm(&self, account: &AccountId) -> Result<Option<Vec<SnapshotNode>>, DbError> {
        self.load_snapshot(&format!("swarm:{}", account.to_hex()))
    }
}
