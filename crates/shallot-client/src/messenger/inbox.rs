//! Receiving: polling our inbox and synced config namespaces from swarm members with
//! per-node cursors (then the swarms of our groups, [`crate::groups::poll`]), waiting
//! retrieves to our swarm and our groups' ("private push", [`super::waits`]), and pushed
//! notifications.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use rand::seq::SliceRandom;
use shallot_directory::NodeRecord;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{Request, RetrievedMessage};
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::Namespace;

use super::apply::take_in;
use super::replies::{has_more, retrieve_results, was_held};
use super::waits::WaitTarget;
use super::{
    Messenger, MessengerError, ReceivedMessage, Waited, MAX_POLL_ROUNDS, POLL_NODES,
    PUSH_WAIT_MARGIN, SYNCED_CONFIGS,
};
use crate::db::DbError;
use crate::error::Error;

impl Messenger {
    /// Polls our inbox from [`POLL_NODES`] random members of our swarm (one `batch` each),
    /// merges and deduplicates by hash, opens each message and persists it. Returns only the
    /// messages never seen before (sync copies from our other devices included, as outgoing);
    /// malformed, forged or misaddressed data is dropped with a log line.
    ///
    /// A node that answers `more: true` (a backlog larger than one reply) is asked again from
    /// the new cursor, up to [`MAX_POLL_ROUNDS`] rounds per call.
    pub async fn receive(&self) -> Result<Vec<ReceivedMessage>, MessengerError> {
        let mut shown = Vec::new();
        for _ in 0..MAX_POLL_ROUNDS {
            let (round, more) = self.receive_round().await?;
            shown.extend(round);
            if !more {
                break;
            }
        }
        Ok(shown)
    }

    /// Waits for new messages *through our onion path* ("private push"): keeps one waiting
    /// retrieve (`wait_ms`) in flight to a random member of our swarm for the inbox and synced
    /// config namespaces, and one to a member of each joined group's swarm (up to
    /// [`super::waits::MAX_GROUP_WAITS`], most recently active first) for the namespaces members read; nodes
    /// hold them open until a message for that account is stored there or `wait` (at most
    /// [`super::PUSH_WAIT`] is sensible) passes. Returns as soon as one answers, with what it
    /// brought processed as [`Self::receive`] does; the others stay in flight for the next call.
    /// Groups past the cap, or whose wait a node did not hold, are polled at each call instead.
    /// Every request goes through our onion path: a guard sees our address but not the
    /// account, a swarm member the account (or the group) but not our address.
    ///
    /// [`Waited::waited`] is false when the node did not hold our own wait (a node that does
    /// not know `wait_ms`, such as Session's, or one at its cap): the caller should then pause
    /// for its poll interval before asking again instead of looping.
    ///
    /// When our own waiting request fails (a node that refuses `wait_ms`, a path or a node
    /// gone), this polls as [`Self::receive`] does instead, and reports `waited: false`; only
    /// when that fails too is the error returned.
    pub async fn receive_waiting(&self, wait: Duration) -> Result<Waited, MessengerError> {
        let timeout = wait + PUSH_WAIT_MARGIN;
        if !self.waits.in_flight(WaitTarget::Own) {
            match self.own_wait_request(wait).await {
                Ok((member, request)) => {
                    self.waits
                        .start(WaitTarget::Own, &self.client, member, request, timeout);
                }
                Err(e @ MessengerError::Network(Error::ClockSkew { .. })) => return Err(e),
                Err(e) => {
                    tracing::debug!("waiting receive failed, polling instead: {e}");
                    return self.polled_instead().await;
                }
            }
        }
        let uncovered = self.start_group_waits(wait).await;
        let mut shown = self.poll_groups(uncovered).await;
        if !shown.is_empty() {
            shown.sort_by_key(|m| (m.timestamp, m.hash));
            return Ok(Waited {
                messages: shown,
                waited: true,
            });
        }
        // Every wait answers within its timeout (the task's own), so this limit only guards
        // against a queue nobody feeds.
        let answers = self.waits.next(timeout + PUSH_WAIT_MARGIN).await;
        let mut waited = true;
        for answer in answers {
            match answer.target {
                WaitTarget::Own => match self.take_own_answer(answer.node, answer.result).await {
                    Ok((messages, held)) => {
                        shown.extend(messages);
                        waited &= held;
                    }
                    Err(e @ MessengerError::Network(Error::ClockSkew { .. })) => return Err(e),
                    Err(e) => {
                        tracing::debug!("waiting receive failed, polling instead: {e}");
                        let mut polled = self.polled_instead().await?;
                        polled.messages.extend(shown);
                        polled.messages.sort_by_key(|m| (m.timestamp, m.hash));
                        return Ok(polled);
                    }
                },
                WaitTarget::Group(id) => {
                    shown.extend(self.take_group_wait(id, answer.node, answer.result).await);
                }
            }
        }
        shown.sort_by_key(|m| (m.timestamp, m.hash));
        Ok(Waited {
            messages: shown,
            waited,
        })
    }

    /// A poll instead of a wait: what [`Self::receive`] returns, as not waited.
    async fn polled_instead(&self) -> Result<Waited, MessengerError> {
        let messages = self.receive().await?;
        Ok(Waited {
            messages,
            waited: false,
        })
    }

    /// The namespaces our own polls and waits read: the inbox, then the synced configs.
    fn own_namespaces() -> Arc<[Namespace]> {
        std::iter::once(Namespace::DEFAULT)
            .chain(SYNCED_CONFIGS.iter().map(|k| k.namespace()))
            .collect()
    }

    /// The batch of signed retrieves of our namespaces from `node`'s cursors, each asking to
    /// wait `wait` if given.
    async fn own_batch(
        &self,
        node: shallot_proto::Ed25519Pub,
        namespaces: &Arc<[Namespace]>,
        wait: Option<Duration>,
    ) -> Result<Request, MessengerError> {
        let account = self.account();
        let cursors = {
            let namespaces = Arc::clone(namespaces);
            self.db
                .call(move |db| {
                    namespaces
                        .iter()
                        .map(|ns| db.last_hash(&node, &account, *ns))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?
        };
        let retrieves = namespaces
            .iter()
            .zip(cursors)
            .map(|(ns, cursor)| {
                let mut request = self.signed_retrieve(*ns, cursor);
                if let (Request::Retrieve(r), Some(wait)) = (&mut request, wait) {
                    r.wait_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                }
                request
            })
            .collect();
        Ok(Request::Batch(retrieves))
    }

    /// Our own waiting retrieve: the member it goes to (the last one that answered with
    /// messages, else a random one) and the request.
    async fn own_wait_request(
        &self,
        wait: Duration,
    ) -> Result<(NodeRecord, Request), MessengerError> {
        let account = self.account();
        let now = self.client.clock().now_ms();
        self.db.call(move |db| db.delete_expired(now)).await?;
        self.note_correspondents(None).await;
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());
        let sticky = self
            .wait_member
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(pos) = sticky.and_then(|k| members.iter().position(|m| m.ed25519 == k)) {
            members.swap(0, pos);
        }
        let member = members.into_iter().next().ok_or(Error::SwarmUnreachable {
            tried: 0,
            last: "no swarm members".into(),
        })?;
        let request = self
            .own_batch(member.ed25519, &Self::own_namespaces(), Some(wait))
            .await?;
        Ok((member, request))
    }

    /// Takes in the answer to our own waiting retrieve; also says whether the node held it.
    async fn take_own_answer(
        &self,
        node: shallot_proto::Ed25519Pub,
        result: Result<(u16, serde_json::Value), Error>,
    ) -> Result<(Vec<ReceivedMessage>, bool), MessengerError> {
        let account = self.account();
        let namespaces = Self::own_namespaces();
        let body = match result {
            Ok((_, body)) => body,
            Err(Error::SwarmMoved { snodes }) => {
                if !snodes.is_empty() {
                    self.client.set_cached_swarm(account, snodes);
                }
                return Err(Error::SwarmMoved { snodes: Vec::new() }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let pages = retrieve_results(&body, namespaces.len())?;
        let more = has_more(&pages);
        let held = was_held(&pages);
        let results: Vec<Option<Vec<RetrievedMessage>>> = pages
            .into_iter()
            .map(|page| page.map(|p| p.messages))
            .collect();
        if results.iter().flatten().any(|m| !m.is_empty()) {
            *self
                .wait_member
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(node);
        }
        let mut shown = self.take_own(vec![(node, results)], &namespaces).await?;
        if more {
            shown.extend(self.receive().await?);
        }
        Ok((shown, held))
    }

    /// One poll of [`Self::receive`]: one batch to each of [`POLL_NODES`] members of our
    /// swarm, then our groups' swarms; also says whether a node had more than it returned.
    async fn receive_round(&self) -> Result<(Vec<ReceivedMessage>, bool), MessengerError> {
        let account = self.account();
        let now = self.client.clock().now_ms();
        self.db.call(move |db| db.delete_expired(now)).await?;
        self.note_correspondents(None).await;
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());

        // Our inbox, then the synced config namespaces, in one batch per node.
        let namespaces = Self::own_namespaces();
        // Per answering node: per namespace, the messages if that retrieve succeeded.
        let mut answers = Vec::new();
        let mut last_error = None;
        let mut more = false;
        for member in &members {
            if answers.len() >= POLL_NODES {
                break;
            }
            let node = member.ed25519;
            let request = self.own_batch(node, &namespaces, None).await?;
            match self.client.request_node(member, &request).await {
                Ok((_, body)) => match retrieve_results(&body, namespaces.len()) {
                    Ok(pages) => {
                        more |= has_more(&pages);
                        let results = pages
                            .into_iter()
                            .map(|page| page.map(|p| p.messages))
                            .collect();
                        answers.push((node, results));
                    }
                    Err(e) => {
                        tracing::debug!(%node, "retrieve failed: {e}");
                        last_error = Some(e);
                    }
                },
                Err(Error::SwarmMoved { snodes }) => {
                    if !snodes.is_empty() {
                        self.client.set_cached_swarm(account, snodes);
                    }
                    last_error = Some(Error::SwarmMoved { snodes: Vec::new() });
                }
                Err(e @ Error::ClockSkew { .. }) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(%node, "retrieve failed: {e}");
                    last_error = Some(e);
                }
            }
        }
        if answers.is_empty() {
            return Err(last_error
                .unwrap_or(Error::SwarmUnreachable {
                    tried: 0,
                    last: "no swarm members".into(),
                })
                .into());
        }
        let mut shown = self.take_own(answers, &namespaces).await?;
        // Then our groups' swarms (a restored device learns its groups from UserGroups above).
        shown.extend(self.receive_groups().await);
        shown.sort_by_key(|m| (m.timestamp, m.hash));
        Ok((shown, more))
    }

    /// Takes in the answers of our own swarm's members (per node: per namespace of
    /// `namespaces`, the messages if that retrieve succeeded): configs, then messages, then
    /// the cursors.
    async fn take_own(
        &self,
        answers: Vec<(
            shallot_proto::Ed25519Pub,
            Vec<Option<Vec<RetrievedMessage>>>,
        )>,
        namespaces: &Arc<[Namespace]>,
    ) -> Result<Vec<ReceivedMessage>, MessengerError> {
        let account = self.account();
        // Configs first, so contacts and names are in place for the messages.
        let to_push = self.adopt_configs(&answers).await?;

        let inbox: Vec<RetrievedMessage> = answers
            .iter()
            .flat_map(|(_, results)| results.first().into_iter().flatten().flatten())
            .cloned()
            .collect();
        let me = Arc::clone(&self.identity);
        let now = self.client.clock().now_ms();
        let (shown, mut follow) = self
            .db
            .call(move |db| take_in(db, &me, &inbox, now))
            .await?;
        self.note_feedback(&mut follow);
        let groups_changed = follow.groups_changed;
        self.follow_up(follow).await;
        for kind in to_push {
            self.sync_config_logged(kind).await;
        }
        if groups_changed {
            self.sync_config_logged(ConfigKind::UserGroups).await;
        }
        // Cursors move only once everything before them is persisted.
        let cursors: Vec<_> = answers
            .iter()
            .flat_map(|(node, results)| {
                namespaces.iter().zip(results).filter_map(|(ns, messages)| {
                    let newest = messages.as_ref()?.last()?;
                    Some((*node, *ns, newest.hash))
                })
            })
            .collect();
        self.db
            .call(move |db| {
                for (node, ns, hash) in &cursors {
                    db.set_last_hash(node, &account, *ns, hash)?;
                }
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(shown)
    }

    /// Handles a pushed message (see [`crate::push`]) exactly as a polled one: checks that the
    /// hash names the data, opens it, and persists it. `Some` iff it is a new visible message;
    /// a later poll does not show it again. Notifications without data, for another account or
    /// namespace, are ignored (`None`).
    pub async fn accept_pushed(
        &self,
        note: &crate::push::Notification,
    ) -> Result<Option<ReceivedMessage>, MessengerError> {
        let account = self.account();
        let Some(data) = note.data.as_ref() else {
            return Ok(None);
        };
        if note.account != account || note.namespace != Namespace::DEFAULT {
            return Ok(None);
        }
        let item = RetrievedMessage {
            data: data.clone(),
            expiration: note.expiry_ms,
            hash: note.hash,
            timestamp: note.timestamp_ms,
        };
        let me = Arc::clone(&self.identity);
        let now = self.client.clock().now_ms();
        let (mut shown, mut follow) = self
            .db
            .call(move |db| take_in(db, &me, &[item], now))
            .await?;
        self.note_feedback(&mut follow);
        if !follow.is_empty() {
            // Pushes arrive while the caller waits for the next: update our swarm copies in
            // the background.
            let requests = self.follow_up_requests(follow);
            let client = self.client.clone();
            tokio::spawn(async move {
                for request in requests {
                    if let Err(e) = client.request_swarm(&account, &request).await {
                        tracing::warn!("could not update our swarm copies: {e}");
                    }
                }
            });
        }
        Ok(shown.pop())
    }

    /// The hashes one swarm member currently holds in our inbox (a signed retrieve from the
    /// start, no cursor; nothing is processed or persisted).
    pub async fn peek_node(&self, member: &NodeRecord) -> Result<Vec<MessageHash>, MessengerError> {
        Ok(self
            .peek_node_expiries(member)
            .await?
            .into_iter()
            .map(|(hash, _)| hash)
            .collect())
    }

    /// [`Self::peek_node`] with when the node will drop each message (Unix ms).
    pub async fn peek_node_expiries(
        &self,
        member: &NodeRecord,
    ) -> Result<Vec<(MessageHash, u64)>, MessengerError> {
        let request = self.signed_retrieve(Namespace::DEFAULT, None);
        let (_, body) = self
            .client
            .request_node(member, &Request::Batch(vec![request]))
            .await?;
        Ok(retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .map(|m| (m.hash, m.expiration))
            .collect())
    }
}
