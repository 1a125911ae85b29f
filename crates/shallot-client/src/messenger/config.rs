//! Our profile and contact list, shared with our other devices as config messages in our
//! swarm (namespaces 2 and 3; the merging itself is [`crate::config_sync`]).

use std::sync::Arc;

use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{Request, RetrievedMessage, Store, StoreAuth};
use shallot_proto::session::config_message::ConfigKind;
use shallot_proto::session::protos::Profile;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Namespace};

use super::replies::{count_stored, retrieve_results};
use super::{
    clean_display_name, profile_of, Messenger, MessengerError, CONFIG_TTL_MS, MAX_NAME_BYTES,
    SYNCED_CONFIGS,
};
use crate::config_sync;
use crate::db::DbError;
use crate::error::Error;

/// The retrieved config versions of each node that answered, per namespace (`None`: that
/// retrieve failed), keyed by the node's Ed25519 key.
/// Config versions as (storage hash, sealed data), the form [`config_sync::adopt`] takes.
type Versions = Vec<(MessageHash, Vec<u8>)>;

pub(super) type Answers = [(
    shallot_proto::Ed25519Pub,
    Vec<Option<Vec<RetrievedMessage>>>,
)];

impl Messenger {
    /// Our display name, if set.
    pub async fn display_name(&self) -> Result<Option<String>, MessengerError> {
        Ok(self.db.profile_name().await?)
    }

    /// The profile sent with our messages (`None` while we have no display name).
    pub(crate) async fn profile(&self) -> Result<Option<Profile>, MessengerError> {
        Ok(profile_of(self.display_name().await?))
    }

    /// Sets the display name our contacts see with our messages from now on, and pushes it to
    /// our other devices (UserProfile config). The name is trimmed; it must be 1 to
    /// [`MAX_NAME_BYTES`] bytes without control characters. It applies here even if the push
    /// fails (the error says so); the next change or [`Self::sync_config`] retries.
    pub async fn set_display_name(&self, name: &str) -> Result<String, MessengerError> {
        let cleaned = clean_display_name(name).ok_or_else(|| {
            MessengerError::Build(format!(
                "a display name must be 1 to {MAX_NAME_BYTES} bytes of printable text"
            ))
        })?;
        let name = cleaned.clone();
        self.db.call(move |db| db.set_profile_name(&name)).await?;
        self.sync_config(ConfigKind::UserProfile).await?;
        Ok(cleaned)
    }

    /// Pushes our profile or contact list to our swarm for our other devices if it changed
    /// since the current version, or if concurrent versions need merging: the next seqno in its
    /// namespace (2 or 3), after which the versions it replaces are deleted. Returns whether a
    /// version was pushed.
    pub async fn sync_config(&self, kind: ConfigKind) -> Result<bool, MessengerError> {
        let state = self
            .db
            .call(move |db| config_sync::load_state(db, kind))
            .await?;
        if state.heads.is_empty() {
            // This device's first push of this kind: build on the account's current version,
            // not on nothing (a seqno 1 far behind it would be dropped as stale).
            self.refresh_config(kind).await?;
        }
        let now = self.client.clock().now_ms();
        let me = Arc::clone(&self.identity);
        let prepared = self
            .db
            .call(move |db| config_sync::prepare_push(db, &me, kind, now))
            .await?;
        let Some(push) = prepared else {
            return Ok(false);
        };
        let account = self.account();
        let namespace = kind.namespace();
        let ts = i64::try_from(now).unwrap_or(i64::MAX);
        let auth = self.auth(
            &SignedRequest::Store {
                namespace,
                sig_timestamp: now,
            }
            .message(),
        );
        let store = Store {
            account,
            namespace,
            timestamp: ts,
            expiry: ts.saturating_add(i64::try_from(CONFIG_TTL_MS).unwrap_or(i64::MAX)),
            data: push.sealed,
            auth: Some(StoreAuth {
                sig_timestamp: ts,
                auth,
            }),
        };
        let hash = store.hash();
        let (_, body) = self
            .client
            .request_swarm(&account, &Request::Store(store))
            .await?;
        if count_stored(&body) == 0 {
            return Err(Error::Rejected {
                status: 0,
                body: "no member of our swarm stored the config".into(),
            }
            .into());
        }
        let head = config_sync::Head {
            storage_hash: Some(hash),
            ..push.head
        };
        self.db
            .call(move |db| config_sync::record_push(db, kind, head))
            .await?;
        tracing::debug!(?kind, seqno = push.seqno, "pushed a config version");
        let replaced: Vec<MessageHash> = push.replaces.into_iter().filter(|h| *h != hash).collect();
        if let Some(request) = self.delete_request(&replaced) {
            if let Err(e) = self.client.request_swarm(&account, &request).await {
                tracing::warn!("could not delete the replaced config versions: {e}");
            }
        }
        Ok(true)
    }

    /// Fetches every version of `kind` stored in our swarm (no cursor) and takes them in.
    async fn refresh_config(&self, kind: ConfigKind) -> Result<(), MessengerError> {
        let account = self.account();
        let namespace = kind.namespace();
        let request = Request::Batch(vec![self.signed_retrieve(namespace, None)]);
        let (_, body) = self.client.request_swarm(&account, &request).await?;
        let items: Versions = retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .filter_map(|item| config_item(&account, namespace, &item))
            .collect();
        let now = self.client.clock().now_ms();
        let me = Arc::clone(&self.identity);
        let adoption = self
            .db
            .call(move |db| config_sync::adopt(db, &me, kind, &items, now))
            .await?;
        if let Some(seqno) = adoption.adopted {
            tracing::debug!(
                ?kind,
                seqno,
                "fetched the current config before a first push"
            );
        }
        Ok(())
    }

    /// [`Self::sync_config`] for a change that already took effect here: failure is logged.
    pub(crate) async fn sync_config_logged(&self, kind: ConfigKind) {
        if let Err(e) = self.sync_config(kind).await {
            tracing::warn!(?kind, "could not sync the change to our other devices: {e}");
        }
    }

    /// Takes in the retrieved versions of each synced config (the results after the inbox's,
    /// per answering node, in [`SYNCED_CONFIGS`] order). Returns the kinds for which a version
    /// should be pushed: a merge of concurrent versions, or a local change re-applied.
    pub(super) async fn adopt_configs(
        &self,
        answers: &Answers,
    ) -> Result<Vec<ConfigKind>, MessengerError> {
        let account = self.account();
        let mut found: Vec<(ConfigKind, Versions)> = Vec::new();
        for (index, kind) in SYNCED_CONFIGS.iter().enumerate() {
            let mut items: Versions = Vec::new();
            for (_, results) in answers {
                for item in results.get(index + 1).into_iter().flatten().flatten() {
                    if let Some(item) = config_item(&account, kind.namespace(), item) {
                        if !items.iter().any(|(h, _)| *h == item.0) {
                            items.push(item);
                        }
                    }
                }
            }
            found.push((*kind, items));
        }
        let now = self.client.clock().now_ms();
        let me = Arc::clone(&self.identity);
        let to_push = self
            .db
            .call(move |db| {
                let mut to_push = Vec::new();
                for (kind, items) in &found {
                    let adoption = config_sync::adopt(db, &me, *kind, items, now)?;
                    if let Some(seqno) = adoption.adopted {
                        tracing::debug!(?kind, seqno, "adopted a config from another device");
                    }
                    if adoption.needs_push {
                        to_push.push(*kind);
                    }
                }
                Ok::<_, DbError>(to_push)
            })
            .await?;
        Ok(to_push)
    }
}

/// A retrieved config item as (hash, data), if its hash names its data in `namespace`.
fn config_item(
    account: &AccountId,
    namespace: Namespace,
    item: &RetrievedMessage,
) -> Option<(MessageHash, Vec<u8>)> {
    if MessageHash::compute(account, namespace, &item.data) != item.hash {
        tracing::warn!(message = %item.hash, "dropping config message: hash does not match the data");
        return None;
    }
    Some((item.hash, item.data.clone()))
}
