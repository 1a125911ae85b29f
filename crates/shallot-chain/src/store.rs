//! Persistence: blocks, their events (the log), and the ledger and state history derived from
//! them, in SQLite (WAL, schema-version row with append-only migrations).
//!
//! The event log is the source of truth. On open every block is replayed through
//! [`ChainState::apply_block`] (checking the hash chain) to rebuild the state; no snapshots —
//! a devnet chain is small and replay is fast. The `ledger` and `history` tables are projections
//! written in the same transaction as their block, for inspection with `sqlite3`. The rule table
//! is stored at creation: reopening with different rules would replay into a different state, so
//! it is refused.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::config::Rules;
use crate::state::{Block, BlockOutcome, ChainState, Event};

/// Schema migrations; entry `i` takes the database from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE blocks (
        height    INTEGER PRIMARY KEY,
        hash      BLOB NOT NULL UNIQUE,
        prev_hash BLOB NOT NULL,
        timestamp INTEGER NOT NULL
    );
    CREATE TABLE events (
        height INTEGER NOT NULL REFERENCES blocks (height),
        idx    INTEGER NOT NULL,
        body   TEXT NOT NULL,
        PRIMARY KEY (height, idx)
    );
    CREATE TABLE ledger (
        id            INTEGER PRIMARY KEY,
        height        INTEGER NOT NULL,
        pubkey        TEXT NOT NULL,
        address       TEXT NOT NULL,
        amount        INTEGER NOT NULL,
        kind          TEXT NOT NULL,
        unlock_height INTEGER
    );
    CREATE TABLE history (
        id     INTEGER PRIMARY KEY,
        height INTEGER NOT NULL,
        pubkey TEXT NOT NULL,
        body   TEXT NOT NULL
    );
    CREATE INDEX history_pubkey ON history (pubkey);
    "];

/// Why the chain database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("chain database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored event or setting did not (de)serialize.
    #[error("chain database: bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a newer build.
    #[error(
        "chain database schema version {found} is newer than this build supports ({supported})"
    )]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest this build knows.
        supported: i64,
    },
    /// The chain was created with other rules (block time, scale, requirement, lock).
    #[error(
        "chain database was created with different rules; use the same settings or a new data dir"
    )]
    RulesChanged,
    /// The hash chain or heights do not line up.
    #[error("chain database corrupt at height {height}: {reason}")]
    Corrupt {
        /// Offending block.
        height: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The data directory could not be created.
    #[error("chain data dir: {0}")]
    Io(#[from] std::io::Error),
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The chain database: one read-write connection, used by the block producer.
#[derive(Debug)]
pub struct ChainStore {
    conn: Connection,
}

impl ChainStore {
    /// Opens (creating if needed) `path`, migrates, and replays the log into a state.
    pub fn open(path: &Path, rules: Rules) -> Result<(Self, ChainState), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        Self::init(conn, rules)
    }

    /// A throwaway in-memory database (no data dir configured, and tests).
    pub fn in_memory(rules: Rules) -> Result<(Self, ChainState), StoreError> {
        Self::init(Connection::open_in_memory()?, rules)
    }

    fn init(mut conn: Connection, rules: Rules) -> Result<(Self, ChainState), StoreError> {
        migrate(&mut conn)?;
        let rules_json = serde_json::to_string(&rules)?;
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'rules'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match stored {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('rules', ?1)",
                    [&rules_json],
                )?;
            }
            Some(stored) => {
                let stored: Rules = serde_json::from_str(&stored)?;
                if stored != rules {
                    return Err(StoreError::RulesChanged);
                }
            }
        }
        let store = Self { conn };
        let state = store.replay(rules)?;
        Ok((store, state))
    }

    /// Rebuilds the state by applying every stored block in order, checking the hash chain.
    fn replay(&self, rules: Rules) -> Result<ChainState, StoreError> {
        let mut state = ChainState::new(rules);
        let mut blocks = self
            .conn
            .prepare("SELECT height, hash, prev_hash, timestamp FROM blocks ORDER BY height")?;
        let mut events = self
            .conn
            .prepare("SELECT body FROM events WHERE height = ?1 ORDER BY idx")?;
        let rows = blocks.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (height, hash, prev_hash, timestamp) = row?;
            let height = to_u64(height);
            let corrupt = |reason| StoreError::Corrupt { height, reason };
            if height != state.next_height() {
                return Err(corrupt("missing block"));
            }
            let body: Vec<Event> = events
                .query_map([to_i64(height)], |r| r.get::<_, String>(0))?
                .map(|text| Ok(serde_json::from_str(&text?)?))
                .collect::<Result<_, StoreError>>()?;
            let block = state.next_block(to_u64(timestamp), body);
            if block.prev_hash.as_slice() != prev_hash.as_slice() {
                return Err(corrupt("previous hash mismatch"));
            }
            if block.hash.as_slice() != hash.as_slice() {
                return Err(corrupt("hash mismatch"));
            }
            state.apply_block(&block);
        }
        Ok(state)
    }

    /// Appends a block and what it produced, atomically.
    pub fn append(&mut self, block: &Block, outcome: &BlockOutcome) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let h = to_i64(block.height);
        tx.execute(
            "INSERT INTO blocks (height, hash, prev_hash, timestamp) VALUES (?1, ?2, ?3, ?4)",
            params![
                h,
                &block.hash[..],
                &block.prev_hash[..],
                to_i64(block.timestamp)
            ],
        )?;
        for (idx, event) in block.events.iter().enumerate() {
            tx.execute(
                "INSERT INTO events (height, idx, body) VALUES (?1, ?2, ?3)",
                params![h, to_i64(idx as u64), serde_json::to_string(event)?],
            )?;
        }
        for entry in &outcome.ledger {
            let (kind, unlock) = match entry.kind {
                crate::state::LedgerKind::Staked => ("staked", None),
                crate::state::LedgerKind::Released => ("released", None),
                crate::state::LedgerKind::Slashed { unlock_height } => {
                    ("slashed", Some(to_i64(unlock_height)))
                }
            };
            tx.execute(
                "INSERT INTO ledger (height, pubkey, address, amount, kind, unlock_height)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    to_i64(entry.height),
                    entry.pubkey.to_hex(),
                    entry.address.0,
                    to_i64(entry.amount),
                    kind,
                    unlock
                ],
            )?;
        }
        for entry in &outcome.history {
            tx.execute(
                "INSERT INTO history (height, pubkey, body) VALUES (?1, ?2, ?3)",
                params![
                    to_i64(entry.height),
                    entry.pubkey.to_hex(),
                    serde_json::to_string(&entry.change)?
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Number of stored blocks.
    pub fn block_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM blocks", [], |r| r.get(0))?;
        Ok(to_u64(n))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: Option<i64> = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?;
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let found = found.unwrap_or(0);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let tx = conn.transaction()?;
    for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [supported],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ed25519_dalek::SigningKey;
    use shallot_proto::Ed25519Pub;

    use super::*;
    use crate::config::ChainConfig;
    use crate::state::{Address, Reservation};

    fn rules(block_secs: u64) -> Rules {
        Rules::from_config(&ChainConfig {
            block_time: Duration::from_secs(block_secs),
            ..ChainConfig::default()
        })
    }

    #[test]
    fn survives_reopen_and_refuses_other_rules_or_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.sqlite");
        let pubkey =
            Ed25519Pub::from_bytes(SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
        let (mut store, mut state) = ChainStore::open(&path, rules(5)).unwrap();
        for h in 0..5u64 {
            let events = if h == 2 {
                vec![Event::Register {
                    pubkey,
                    operator_fee_bp: 0,
                    reservations: vec![Reservation {
                        address: Address("op".into()),
                        amount: state.rules().staking_requirement,
                    }],
                    operator_amount: state.rules().staking_requirement,
                }]
            } else {
                vec![]
            };
            let block = state.next_block(1000 + h * 5, events);
            let outcome = state.apply_block(&block);
            store.append(&block, &outcome).unwrap();
        }
        drop(store);

        let (store, reopened) = ChainStore::open(&path, rules(5)).unwrap();
        assert_eq!(store.block_count().unwrap(), 5);
        assert_eq!(reopened.tip(), state.tip());
        assert_eq!(reopened.nodes(), state.nodes());
        assert_eq!(reopened.ledger(), state.ledger());
        assert_eq!(reopened.history(), state.history());
        drop(store);

        assert!(matches!(
            ChainStore::open(&path, rules(6)),
            Err(StoreError::RulesChanged)
        ));

        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE blocks SET timestamp = timestamp + 1 WHERE height = 3",
            [],
        )
        .unwrap();
        drop(conn);
        assert!(matches!(
            ChainStore::open(&path, rules(5)),
            Err(StoreError::Corrupt { height: 3, .. })
        ));
    }
}
