//! Waiting retrieves kept in flight between calls of [`Messenger::receive_waiting`]: one for
//! our own swarm and one per joined group's swarm (the [`MAX_GROUP_WAITS`] most recently active
//! groups), each a task holding one onion request open. Their answers queue on a bounded
//! channel and are taken in by the caller, so a wait that did not answer yet is neither
//! cancelled nor sent again. Groups past the cap, and groups whose wait a node did not hold (or
//! that failed), are polled instead, the latter for [`GROUP_WAIT_BACKOFF`].
//!
//! [`Messenger::receive_waiting`]: super::Messenger::receive_waiting

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use shallot_directory::NodeRecord;
use shallot_proto::group::GroupId;
use shallot_proto::rpc::Request;
use shallot_proto::Ed25519Pub;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::onion_client::OnionClient;

/// Most group swarms covered by a waiting retrieve at once (each holds one request open
/// through our guard); the rest are polled after each wait.
pub const MAX_GROUP_WAITS: usize = 8;

/// How long a group whose wait was not held (a node at its cap or without `wait_ms`, a
/// refused credential) or failed is polled instead of waited on.
pub const GROUP_WAIT_BACKOFF: Duration = Duration::from_secs(30);

/// Whose swarm a waiting retrieve reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WaitTarget {
    /// Our inbox and synced configs.
    Own,
    /// A group's namespaces.
    Group(GroupId),
}

/// The answer of one waiting retrieve.
#[derive(Debug)]
pub(crate) struct Answer {
    /// What it read.
    pub target: WaitTarget,
    /// Which wait it was (a newer one may have replaced it).
    id: u64,
    /// The swarm member it went to.
    pub node: Ed25519Pub,
    /// The node's reply, or why there was none.
    pub result: Result<(u16, Value), Error>,
}

/// A wait in flight.
struct InFlight {
    id: u64,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    in_flight: HashMap<WaitTarget, InFlight>,
    /// Groups polled instead of waited on until then.
    backoff: HashMap<GroupId, Instant>,
    /// Per group, the swarm member whose last answer brought items: our cursors there are
    /// current, so the next wait is held at once instead of answering with items we already
    /// have (see [`Waits::stick`]).
    sticky: HashMap<GroupId, Ed25519Pub>,
}

impl Drop for State {
    fn drop(&mut self) {
        for wait in self.in_flight.values() {
            wait.task.abort();
        }
    }
}

/// The waits of one messenger.
pub(crate) struct Waits {
    tx: mpsc::Sender<Answer>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Answer>>,
    state: Mutex<State>,
}

impl Default for Waits {
    fn default() -> Self {
        // Each task sends one answer; a target gets a new task only once its last one
        // finished, so the queue never holds more than a few rounds of answers.
        let (tx, rx) = mpsc::channel(2 * (MAX_GROUP_WAITS + 1));
        Self {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            state: Mutex::new(State::default()),
        }
    }
}

impl Waits {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a wait for `target` is in flight (sent and not answered yet).
    pub fn in_flight(&self, target: WaitTarget) -> bool {
        self.state()
            .in_flight
            .get(&target)
            .is_some_and(|w| !w.task.is_finished())
    }

    /// Whether `group` should be polled rather than waited on now (see [`GROUP_WAIT_BACKOFF`]).
    pub fn backing_off(&self, group: &GroupId) -> bool {
        let mut state = self.state();
        match state.backoff.get(group) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                state.backoff.remove(group);
                false
            }
            None => false,
        }
    }

    /// Polls `group` instead of waiting on it for [`GROUP_WAIT_BACKOFF`].
    pub fn back_off(&self, group: GroupId) {
        self.state()
            .backoff
            .insert(group, Instant::now() + GROUP_WAIT_BACKOFF);
    }

    /// Sends `group`'s next wait to `node`, whose answer just brought items (so our cursors
    /// there are current). Without this each wait went to a random member, whose cursor was
    /// usually behind: it answered at once with messages already taken in, and a new message
    /// was seen only after several such rounds (a 2-member group took ~10 ms more than 1:1).
    pub fn stick(&self, group: GroupId, node: Ed25519Pub) {
        self.state().sticky.insert(group, node);
    }

    /// The member `group`'s next wait should go to, forgotten here: it is set again only when
    /// that wait brings items, so after a quiet wait or an error the next one goes to a random
    /// member (and members that missed a replica are read too), as our own waits do.
    pub fn take_sticky(&self, group: &GroupId) -> Option<Ed25519Pub> {
        self.state().sticky.remove(group)
    }

    /// Cancels the group waits not in `keep` (groups left, or past the cap now).
    pub fn retain_groups(&self, keep: &[GroupId]) {
        let mut state = self.state();
        state.sticky.retain(|id, _| keep.contains(id));
        state.in_flight.retain(|target, wait| match target {
            WaitTarget::Own => true,
            WaitTarget::Group(id) => {
                let kept = keep.contains(id);
                if !kept {
                    wait.task.abort();
                }
                kept
            }
        });
    }

    /// Sends `request` to `member` through `client` in a task of its own, waiting up to
    /// `timeout` for the answer, which goes to the queue [`Self::next`] reads.
    pub fn start(
        &self,
        target: WaitTarget,
        client: &OnionClient,
        member: NodeRecord,
        request: Request,
        timeout: Duration,
    ) {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let (client, tx) = (client.clone(), self.tx.clone());
        let task = tokio::spawn(async move {
            let result = client
                .request_node_with_timeout(&member, &request, timeout)
                .await;
            let answer = Answer {
                target,
                id,
                node: member.ed25519,
                result,
            };
            let _ = tx.send(answer).await;
        });
        if let Some(old) = state.in_flight.insert(target, InFlight { id, task }) {
            old.task.abort();
        }
    }

    /// The next answer, and every other one already queued; waits up to `limit` for the first
    /// (empty when none came). Each answer's target is free for a new wait.
    pub async fn next(&self, limit: Duration) -> Vec<Answer> {
        let mut rx = self.rx.lock().await;
        let mut answers = Vec::new();
        if let Ok(Some(first)) = tokio::time::timeout(limit, rx.recv()).await {
            answers.push(first);
            while let Ok(more) = rx.try_recv() {
                answers.push(more);
            }
        }
        drop(rx);
        let mut state = self.state();
        for answer in &answers {
            if state
                .in_flight
                .get(&answer.target)
                .is_some_and(|w| w.id == answer.id)
            {
                state.in_flight.remove(&answer.target);
            }
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u8) -> GroupId {
        shallot_proto::group::GroupAdmin::from_seed([n; 32]).id()
    }

    #[test]
    fn a_group_backs_off_for_a_while_and_waits_are_cancelled_with_their_group() {
        let waits = Waits::default();
        assert!(!waits.backing_off(&group(1)));
        waits.back_off(group(1));
        assert!(waits.backing_off(&group(1)));
        assert!(!waits.backing_off(&group(2)));
        waits.state().backoff.insert(group(1), Instant::now());
        assert!(!waits.backing_off(&group(1)), "the back-off ended");
        assert!(waits.state().backoff.is_empty());

        let node = Ed25519Pub::from_bytes([7; 32]);
        waits.stick(group(1), node);
        waits.stick(group(2), node);
        assert_eq!(waits.take_sticky(&group(1)), Some(node));
        assert_eq!(waits.take_sticky(&group(1)), None, "taken once");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(async {
            let mut state = waits.state();
            for target in [WaitTarget::Own, WaitTarget::Group(group(1))] {
                let task = tokio::spawn(std::future::pending());
                state.in_flight.insert(target, InFlight { id: 0, task });
            }
            drop(state);
            assert!(waits.in_flight(WaitTarget::Group(group(1))));
            waits.stick(group(1), node);
            waits.retain_groups(&[group(2)]);
            assert!(!waits.in_flight(WaitTarget::Group(group(1))));
            assert_eq!(
                waits.take_sticky(&group(1)),
                None,
                "forgotten with its wait"
            );
            assert_eq!(waits.take_sticky(&group(2)), Some(node));
            assert!(waits.in_flight(WaitTarget::Own), "our own wait stays");
        });
    }
}
