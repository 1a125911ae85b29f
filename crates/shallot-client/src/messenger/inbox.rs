//! Receiving: polling our inbox and synced config namespaces from swarm members with
//! per-node cursors (then the swarms of our groups, [`crate::groups::poll`]), waiting retrieves ("private push"), and pushed notifications.

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
use super::{
    Messenger, MessengerError, ReceivedMessage, Waited, MAX_POLL_ROUNDS, POLL_NODES, SYNCED_CONFIGS,
};
use crate::db::DbError;
use crate::error::Error;

/// What a waiting request may take beyond its wait: the path there and back.
const PUSH_WAIT_MARGIN: Duration = Duration::from_secs(10);

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
            let (round, more, _) = self.receive_round(None).await?;
            shown.extend(round);
            if !more {
                break;
            }
        }
        Ok(shown)
    }

    /// Waits for new messages *through our onion path* ("private push"): asks one random member
    /// of our swarm for the inbox and synced config namespaces with `wait_ms`, which our nodes
    /// hold open until a message for us is stored there or `wait` (at most
    /// [`super::PUSH_WAIT`] is sensible) passes. The guard sees our address but not our
    /// account; the swarm member sees our account but not our address. Messages are processed
    /// as [`Self::receive`] does.
    ///
    /// [`Waited::waited`] is false when the node did not hold the request (a node that does not
    /// know `wait_ms`, such as Session's, or one at its cap): the caller should then pause for
    /// its poll interval before asking again instead of looping.
    ///
    /// When the waiting request fails (a node that refuses `wait_ms`, a path or a node gone),
    /// this polls as [`Self::receive`] does instead, and reports `waited: false`; only when that
    /// fails too is the error returned.
    pub async fn receive_waiting(&self, wait: Duration) -> Result<Waited, MessengerError> {
        match self.receive_round(Some(wait)).await {
            Ok((mut messages, more, waited)) => {
                if more {
                    messages.extend(self.receive().await?);
                }
                Ok(Waited { messages, waited })
            }
            Err(e @ MessengerError::Network(Error::ClockSkew { .. })) => Err(e),
            Err(e) => {
                tracing::debug!("waiting receive failed, polling instead: {e}");
                let messages = self.receive().await?;
                Ok(Waited {
                    messages,
                    waited: false,
                })
            }
        }
    }

    /// One poll of [`Self::receive`], or with `wait` one waiting request to one member; also
    /// says whether a node had more than it returned, and whether every answer was held (its
    /// retrieves granted a wait).
    #[allow(clippy::too_many_lines)] // One poll, step by step.
    async fn receive_round(
        &self,
        wait: Option<Duration>,
    ) -> Result<(Vec<ReceivedMessage>, bool, bool), MessengerError> {
        let account = self.account();
        let now = self.client.clock().now_ms();
        self.db.call(move |db| db.delete_expired(now)).await?;
        self.note_correspondents(None).await;
        let mut members = self.client.swarm(&account).await?;
        members.shuffle(&mut rand::thread_rng());
        let sticky = if wait.is_some() {
            self.wait_member
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        if let Some(pos) = sticky.and_then(|k| members.iter().position(|m| m.ed25519 == k)) {
            members.swap(0, pos);
        }

        // Our inbox, then the synced config namespaces, in one batch per node.
        let namespaces: Arc<[Namespace]> = std::iter::once(Namespace::DEFAULT)
            .chain(SYNCED_CONFIGS.iter().map(|k| k.namespace()))
            .collect();
        // Per answering node: per namespace, the messages if that retrieve succeeded.
        let mut answers = Vec::new();
        let mut last_error = None;
        let mut more = false;
        let mut waited = true;
        let nodes = if wait.is_some() { 1 } else { POLL_NODES };
        for member in &members {
            if answers.len() >= nodes {
                break;
            }
            let node = member.ed25519;
            let cursors = {
                let namespaces = Arc::clone(&namespaces);
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
            let request = Request::Batch(retrieves);
            let reply = match wait {
                Some(wait) => {
                    let timeout = wait + PUSH_WAIT_MARGIN;
                    self.client
                        .request_node_with_timeout(member, &request, timeout)
                        .await
                }
                None => self.client.request_node(member, &request).await,
            };
            match reply {
                Ok((_, body)) => match retrieve_results(&body, namespaces.len()) {
                    Ok(pages) => {
                        more |= has_more(&pages);
                        waited &= was_held(&pages);
                        let results: Vec<Option<Vec<RetrievedMessage>>> = pages
                            .into_iter()
                            .map(|page| page.map(|p| p.messages))
                            .collect();
                        let found = results.iter().flatten().any(|m| !m.is_empty());
                        if wait.is_some() && found {
                            *self
                                .wait_member
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner) = Some(node);
                        }
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

        // Configs first, so contacts and names are in place for the messages.
        let to_push = self.adopt_configs(&answers).await?;

        let inbox: Vec<RetrievedMessage> = answers
            .iter()
            .flat_map(|(_, results)| results.first().into_iter().flatten().flatten())
            .cloned()
            .collect();
        let me = Arc::clone(&self.identity);
        let now = self.client.clock().now_ms();
        let (mut shown, mut follow) = self
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
        // Then our groups' swarms (a restored device learns its groups from UserGroups above).
        shown.extend(self.receive_groups().await);
        shown.sort_by_key(|m| (m.timestamp, m.hash));
        Ok((shown, more, waited))
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
        let request = self.signed_retrieve(Namespace::DEFAULT, None);
        let (_, body) = self
            .client
            .request_node(member, &Request::Batch(vec![request]))
            .await?;
        Ok(retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .map(|m| m.hash)
            .collect())
    }
}
