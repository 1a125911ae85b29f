//! The running chain: committed state + store, the pending events of the next block, and the
//! off-chain ping records. Shared by the RPC handlers and the block producer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use shallot_clock::{Clock, SystemClock};
use shallot_proto::Ed25519Pub;

use crate::auth::NonceCache;
use crate::config::{ChainConfig, Rules};
use crate::state::{BlockOutcome, ChainState, Event, EventError};
use crate::store::{ChainStore, StoreError};

/// Last `storage_server_ping` / `lokinet_ping` from a node: local, not part of the chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pings {
    /// Storage server version reported.
    pub storage_version: [u16; 3],
    /// Unix time of the last clean storage-server ping (0 after an error ping).
    pub last_storage_ping: u64,
    /// Unix time of the last clean lokinet ping.
    pub last_lokinet_ping: u64,
    /// `t` of the last accepted signed storage-server ping (replays must be newer).
    pub storage_ping_t: u64,
    /// `t` of the last accepted signed lokinet ping.
    pub lokinet_ping_t: u64,
}

/// Tester → the nodes it is assigned to test.
type TargetMap = HashMap<Ed25519Pub, Vec<Ed25519Pub>>;

pub(crate) struct Inner {
    pub(crate) store: ChainStore,
    /// Committed state (top block applied).
    pub(crate) state: ChainState,
    /// `state` plus the pending events, used to validate submissions.
    tentative: ChainState,
    pending: Vec<Event>,
    pub(crate) pings: HashMap<Ed25519Pub, Pings>,
    /// (wallet, nonce) pairs of signed stake calls seen within the replay window.
    pub(crate) nonces: NonceCache,
    /// Every tester's targets, computed once per (epoch, funded/active set).
    targets: Option<([u8; 32], TargetMap)>,
}

/// A devnet chain.
pub struct Chain {
    pub(crate) config: ChainConfig,
    inner: Mutex<Inner>,
    /// The workspace clock; the chain reads it in whole seconds.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Opens (or creates, with a genesis block) the chain of `config`, using the system clock.
    pub fn open(config: ChainConfig) -> Result<Self, StoreError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Like [`Chain::open`] with another clock (tests move a `ManualClock`).
    pub fn open_with_clock(config: ChainConfig, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let rules = Rules::from_config(&config);
        let (store, state) = match &config.data_dir {
            Some(dir) => ChainStore::open(&dir.join("chain.sqlite"), rules)?,
            None => ChainStore::in_memory(rules)?,
        };
        let chain = Self {
            config,
            inner: Mutex::new(Inner {
                tentative: state.clone(),
                store,
                state,
                pending: Vec::new(),
                pings: HashMap::new(),
                nonces: NonceCache::default(),
                targets: None,
            }),
            clock,
        };
        if chain.lock().state.tip().is_none() {
            chain.produce_block()?;
        }
        Ok(chain)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every mutation is one call).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Current time from the chain's clock, in unix seconds.
    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    /// Runs `f` on the committed state.
    pub fn with_state<T>(&self, f: impl FnOnce(&ChainState) -> T) -> T {
        f(&self.lock().state)
    }

    /// The nodes `tester` is assigned to test in the current epoch
    /// ([`ChainState::test_targets`]); the whole map is computed once per epoch and membership.
    pub fn test_targets(&self, tester: &Ed25519Pub) -> Vec<Ed25519Pub> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let state = &inner.state;
        let mut h = Blake2b::<U32>::new();
        h.update(state.assignment_epoch().to_le_bytes());
        for node in state.nodes().values() {
            h.update(node.pubkey.as_bytes());
            h.update([u8::from(node.funded()), u8::from(node.active())]);
        }
        let key: [u8; 32] = h.finalize().into();
        if inner.targets.as_ref().is_none_or(|(k, _)| *k != key) {
            let mut map = TargetMap::new();
            let epoch = state.assignment_epoch();
            for node in state.nodes().values().filter(|n| n.funded()) {
                for tester in state.assigned_testers(&node.pubkey, epoch) {
                    map.entry(tester).or_default().push(node.pubkey);
                }
            }
            inner.targets = Some((key, map));
        }
        inner
            .targets
            .as_ref()
            .and_then(|(_, map)| map.get(tester).cloned())
            .unwrap_or_default()
    }

    /// Validates an event against the committed state plus pending events and queues it for
    /// the next block; returns that block's height. A rejected event changes nothing.
    pub fn submit(&self, event: Event) -> Result<u64, EventError> {
        let now = self.now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let height = inner.state.next_height();
        let index = u32::try_from(inner.pending.len()).unwrap_or(u32::MAX);
        inner.tentative.apply_event(height, now, index, &event)?;
        inner.pending.push(event);
        Ok(height)
    }

    /// Makes the next block from the pending events at the clock's time, applies and stores it.
    pub fn produce_block(&self) -> Result<BlockOutcome, StoreError> {
        let now = self.now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let timestamp = inner.state.tip().map_or(now, |t| now.max(t.timestamp));
        let events = std::mem::take(&mut inner.pending);
        let block = inner.state.next_block(timestamp, events);
        let mut next = inner.state.clone();
        let outcome = next.apply_block(&block);
        if let Err(err) = inner.store.append(&block, &outcome) {
            // Not committed: keep the events for the next attempt.
            inner.pending = block.events;
            return Err(err);
        }
        for (index, err) in &outcome.rejected {
            tracing::debug!(height = block.height, index, %err, "event skipped at block time");
        }
        inner.state = next;
        inner.tentative = inner.state.clone();
        Ok(outcome)
    }
}
