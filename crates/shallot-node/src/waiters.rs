//! Waiting retrieves ("private push", a Shallot extension): a `retrieve` (or a `batch` of
//! retrieves) carrying `wait_ms` that finds nothing new is held open until a message for one of
//! its accounts and namespaces is stored here, or until its deadline. The request arrives
//! through an onion path like any other, so the node learns the account but not the client's
//! address, and the reply travels back through the same hops.
//!
//! A waiting request costs one registry entry and one suspended task (no thread). Waiters are
//! capped per holder (so one account cannot take the node's share) and in total; a request over
//! a cap is answered at once, as a plain retrieve, and its reply says `"wait_ms": 0`. The holder
//! is the account, or, for a retrieve signed with a subaccount token (a group member), the
//! account and that token: every member of a group gets its own share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::{AccountId, Namespace};
use tokio::sync::Notify;

/// Caps on waiting retrieves (`[wait]` in the node configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitLimits {
    /// Longest wait granted, in ms; longer requests are shortened to it. Values above
    /// [`HARD_MAX_WAIT_MS`] count as that: the reply must still find its onion path open (30 s
    /// per hop) and the request's signature still valid when it is read again. 0 disables
    /// waiting altogether.
    pub max_wait_ms: u64,
    /// Waiting requests held at once for one account (several devices, several swarm members);
    /// counted per subaccount token for retrieves a subaccount signed (each group member).
    pub max_per_account: usize,
    /// Waiting requests held at once by the node.
    pub max_total: usize,
}

/// Default longest wait: 20 s, under the 30 s onion relay timeout.
pub const DEFAULT_MAX_WAIT_MS: u64 = 20_000;
/// Longest wait whatever the configuration: 25 s, under the 30 s onion relay timeout
/// ([`crate::timeouts::ONION_RELAY`]) and well inside the signature window of the retrieve
/// that is run again when the wait ends.
pub const HARD_MAX_WAIT_MS: u64 = 25_000;

impl Default for WaitLimits {
    fn default() -> Self {
        Self {
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
            max_per_account: 8,
            max_total: 10_000,
        }
    }
}

struct Entry {
    id: u64,
    namespace: Namespace,
    /// The subaccount token the retrieve was signed with; `None`: the account's own key.
    member: Option<SubaccountToken>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct State {
    by_account: HashMap<AccountId, Vec<Entry>>,
    /// Distinct tickets held (a ticket may cover several namespaces).
    total: usize,
    next_id: u64,
    /// Set at shutdown: no new waits, so held requests end before connections close.
    closed: bool,
}

/// The node's waiting retrieves, keyed by account.
pub struct Waiters {
    state: Mutex<State>,
    limits: WaitLimits,
}

impl Default for Waiters {
    fn default() -> Self {
        Self::new(WaitLimits::default())
    }
}

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One (account, namespace) a waiting retrieve reads, and who asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// The account read.
    pub account: AccountId,
    /// The namespace read.
    pub namespace: Namespace,
    /// The subaccount token the retrieve is signed with (a group member): its waits are capped
    /// apart from other members'. `None`: the account's own key, or unsigned.
    pub member: Option<SubaccountToken>,
}

/// A registered wait: woken by [`Waiters::notify`] for any of its (account, namespace) pairs.
/// Dropping it unregisters it.
pub struct Ticket<'a> {
    waiters: &'a Waiters,
    id: u64,
    accounts: Vec<AccountId>,
    notify: Arc<Notify>,
}

impl Ticket<'_> {
    /// Waits until a matching message is stored (true) or `timeout` passes (false). A
    /// notification that came between registration and this call is not lost.
    pub async fn wait(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.notify.notified())
            .await
            .is_ok()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut state = self.waiters.lock();
        for account in &self.accounts {
            if let Some(entries) = state.by_account.get_mut(account) {
                entries.retain(|e| e.id != self.id);
                if entries.is_empty() {
                    state.by_account.remove(account);
                }
            }
        }
        state.total = state.total.saturating_sub(1);
    }
}

impl Waiters {
    /// A registry with the caps of `limits`.
    pub fn new(limits: WaitLimits) -> Self {
        Self {
            state: Mutex::new(State::default()),
            limits,
        }
    }

    /// The configured caps.
    pub fn limits(&self) -> WaitLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wait granted for a request asking `requested_ms`: capped at the configured maximum.
    pub fn granted(&self, requested_ms: u64) -> Duration {
        Duration::from_millis(
            requested_ms
                .min(self.limits.max_wait_ms)
                .min(HARD_MAX_WAIT_MS),
        )
    }

    /// Registers one wait for every [`Want`] in `wants`; `None` when waiting is disabled, `wants`
    /// is empty, or a holder (account, or account and member token) or the node holds its cap
    /// (the caller then answers at once). Register *before* reading the store, so that a
    /// message stored in between still wakes the ticket; drop the ticket unless the reads were
    /// authenticated, so that only a token's owner holds a wait counted under it.
    pub fn register(&self, wants: &[Want]) -> Option<Ticket<'_>> {
        if wants.is_empty() || self.limits.max_wait_ms == 0 {
            return None;
        }
        let mut accounts: Vec<AccountId> = wants.iter().map(|w| w.account).collect();
        accounts.sort_unstable_by_key(AccountId::to_bytes);
        accounts.dedup();
        let mut state = self.lock();
        if state.closed || state.total >= self.limits.max_total {
            return None;
        }
        let over = wants.iter().any(|want| {
            state.by_account.get(&want.account).map_or(0, |entries| {
                let mut ids: Vec<u64> = entries
                    .iter()
                    .filter(|e| e.member == want.member)
                    .map(|e| e.id)
                    .collect();
                ids.dedup();
                ids.len()
            }) >= self.limits.max_per_account
        });
        if over {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.total += 1;
        let notify = Arc::new(Notify::new());
        for want in wants {
            state
                .by_account
                .entry(want.account)
                .or_default()
                .push(Entry {
                    id,
                    namespace: want.namespace,
                    member: want.member,
                    notify: notify.clone(),
                });
        }
        Some(Ticket {
            waiters: self,
            id,
            accounts,
            notify,
        })
    }

    /// Wakes every wait on `account` that covers `namespace` (called when a new message is
    /// stored here, by a client or by a swarm peer's replication).
    pub fn notify(&self, account: &AccountId, namespace: Namespace) {
        let state = self.lock();
        if let Some(entries) = state.by_account.get(account) {
            for entry in entries.iter().filter(|e| e.namespace == namespace) {
                entry.notify.notify_one();
            }
        }
    }

    /// Wakes every held wait and refuses new ones (at shutdown: the held requests answer while
    /// their connections are still open).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for entry in state.by_account.values().flatten() {
            entry.notify.notify_one();
        }
    }

    /// Waiting requests held now.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        let mut bytes = [0u8; 33];
        bytes[0] = 0x05;
        bytes[1] = n;
        AccountId::from_bytes(&bytes).unwrap()
    }

    fn want(n: u8, namespace: i16) -> Want {
        Want {
            account: account(n),
            namespace: Namespace(namespace),
            member: None,
        }
    }

    fn limits(per_account: usize, total: usize) -> WaitLimits {
        WaitLimits {
            max_wait_ms: 20_000,
            max_per_account: per_account,
            max_total: total,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_wakes_only_matching_waits() {
        let waiters = Waiters::default();
        let inbox = waiters.register(&[want(1, 0), want(1, 2)]).unwrap();
        let other = waiters.register(&[want(2, 0)]).unwrap();
        waiters.notify(&account(1), Namespace(2));
        assert!(inbox.wait(Duration::from_secs(1)).await);
        // Another account's wait, and the same account's other namespace, are not woken.
        assert!(!other.wait(Duration::from_secs(1)).await);
        waiters.notify(&account(1), Namespace(5));
        assert!(!inbox.wait(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_notification_before_the_wait_is_not_lost() {
        let waiters = Waiters::default();
        let ticket = waiters.register(&[want(1, 0)]).unwrap();
        // Stored between registration and the wait (while the first read runs).
        waiters.notify(&account(1), Namespace(0));
        let started = tokio::time::Instant::now();
        assert!(ticket.wait(Duration::from_secs(20)).await);
        assert!(started.elapsed() < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_at_its_deadline() {
        let waiters = Waiters::default();
        let ticket = waiters.register(&[want(1, 0)]).unwrap();
        let started = tokio::time::Instant::now();
        assert!(!ticket.wait(Duration::from_secs(20)).await);
        assert_eq!(started.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_reaches_a_wait_already_suspended() {
        let waiters = Arc::new(Waiters::default());
        let task = {
            let waiters = waiters.clone();
            tokio::spawn(async move {
                let ticket = waiters.register(&[want(1, 0)]).unwrap();
                ticket.wait(Duration::from_secs(20)).await
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(waiters.len(), 1);
        waiters.notify(&account(1), Namespace(0));
        assert!(task.await.unwrap());
        assert!(waiters.is_empty());
    }

    #[test]
    fn caps_per_account_and_in_total() {
        let waiters = Waiters::new(limits(2, 3));
        let a1 = waiters.register(&[want(1, 0), want(1, 2)]);
        let a2 = waiters.register(&[want(1, 0)]);
        assert!(a1.is_some() && a2.is_some());
        // Account 1 holds its two; another account still gets in.
        assert!(waiters.register(&[want(1, 0)]).is_none());
        let b1 = waiters.register(&[want(2, 0)]);
        assert!(b1.is_some());
        // The node holds its three.
        assert!(waiters.register(&[want(3, 0)]).is_none());
        assert_eq!(waiters.len(), 3);
        // A ticket naming a capped account is refused whole.
        drop(b1);
        assert!(waiters.register(&[want(3, 0), want(1, 0)]).is_none());
        // Dropping a ticket frees its slots.
        drop(a1);
        assert!(waiters.register(&[want(1, 0)]).is_some());
        drop(a2);
        assert!(waiters.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn closing_wakes_every_wait_and_refuses_new_ones() {
        let waiters = Waiters::default();
        let a = waiters.register(&[want(1, 0)]).unwrap();
        let b = waiters.register(&[want(2, 3)]).unwrap();
        waiters.close();
        assert!(a.wait(Duration::from_secs(20)).await);
        assert!(b.wait(Duration::from_secs(20)).await);
        assert!(waiters.register(&[want(3, 0)]).is_none());
    }

    #[test]
    fn waits_are_capped_and_can_be_disabled() {
        let waiters = Waiters::default();
        assert_eq!(waiters.granted(60_000), Duration::from_secs(20));
        assert_eq!(waiters.granted(5_000), Duration::from_secs(5));
        let off = Waiters::new(WaitLimits {
            max_wait_ms: 0,
            ..WaitLimits::default()
        });
        assert!(off.register(&[want(1, 0)]).is_none());
        let long = Waiters::new(WaitLimits {
            max_wait_ms: 600_000,
            ..WaitLimits::default()
        });
        assert_eq!(long.granted(600_000), Duration::from_secs(25));
        assert!(waiters.register(&[]).is_none());
    }
}
