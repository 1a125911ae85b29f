//! The database on a thread of its own: async code hands it work and awaits the answer, so no
//! task blocks a runtime thread on SQLite or holds a lock on the connection.

use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;
use tokio::sync::{mpsc, oneshot};

use super::{Conversation, ConversationState, Db, DbError, Disappearing, StoredMessage};

/// Jobs waiting for the database thread; callers wait (asynchronously) beyond this.
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// An account's [`Db`], owned by a thread that runs the jobs sent to it one at a time, in
/// order. Cheap to clone; the thread ends and the file is closed when the last handle goes.
#[derive(Clone)]
pub struct DbHandle {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for DbHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbHandle").finish_non_exhaustive()
    }
}

/// Typed queries that copy their keys to the database thread and return its answer.
macro_rules! queries {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        $(#[$doc])*
        pub async fn $name(&self, $($arg: &$ty),*) -> Result<$ret, DbError> {
            $(let $arg: $ty = *$arg;)*
            self.call(move |db| db.$name($(&$arg),*)).await
        }
    )*};
}

impl DbHandle {
    /// Moves `db` to a new thread. If the thread cannot start, every call fails with
    /// [`DbError::Closed`].
    pub fn spawn(mut db: Db) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        let started = std::thread::Builder::new()
            .name("shallot-db".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    job(&mut db);
                }
            });
        if let Err(e) = started {
            tracing::error!("could not start the database thread: {e}");
        }
        Self { jobs }
    }

    /// Runs `job` on the database thread and returns its result. Jobs run in the order they
    /// were sent, each alone, so one job is one consistent step.
    pub async fn call<R, E, F>(&self, job: F) -> Result<R, E>
    where
        F: FnOnce(&mut Db) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move |db: &mut Db| {
                // The caller may have stopped waiting; the job's effect stands.
                let _ = reply.send(job(db));
            }))
            .await
            .map_err(|_| DbError::Closed)?;
        answer.await.map_err(|_| DbError::Closed)?
    }

    queries! {
        /// One message by id.
        fn message(id: MessageHash) -> Option<StoredMessage>;
        /// The messages of a conversation, oldest first.
        fn messages(conversation: SessionId) -> Vec<StoredMessage>;
        /// When a message disappears locally, if it does.
        fn expires(id: MessageHash) -> Option<u64>;
        /// The hash of a sent message's sync copy, if recorded.
        fn sync_hash(id: MessageHash) -> Option<MessageHash>;
        /// The state of the conversation with `contact` (`None` if there is none).
        fn conversation_state(contact: SessionId) -> Option<ConversationState>;
        /// A contact's display name, as their messages' profile said (`None` if unknown).
        fn contact_name(contact: SessionId) -> Option<String>;
        /// The disappearing-messages setting of the conversation with `contact`.
        fn disappearing(contact: SessionId) -> Disappearing;
        /// Every message, oldest first.
        fn all_messages() -> Vec<StoredMessage>;
        /// All conversations, most recent first.
        fn conversations() -> Vec<Conversation>;
        /// Our own display name (`None` until set).
        fn profile_name() -> Option<String>;
        /// Our own profile: name and picture.
        fn own_profile() -> crate::db::OwnProfile;
        /// A contact's recorded profile picture.
        fn contact_picture(contact: SessionId) -> Option<crate::db::ContactPicture>;
    }

    /// The ids of messages whose id (as text) starts with `prefix`.
    pub async fn find_messages(&self, prefix: &str) -> Result<Vec<MessageHash>, DbError> {
        let prefix = prefix.to_owned();
        self.call(move |db| db.find_messages(&prefix)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shallot_proto::Identity;

    #[tokio::test]
    async fn jobs_run_in_order_on_the_database_thread_and_fail_cleanly_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::generate(&mut rand::rngs::OsRng);
        let db = DbHandle::spawn(Db::open_in_dir(dir.path(), &me).unwrap());
        let bob = Identity::generate(&mut rand::rngs::OsRng).session_id();
        let clone = db.clone();
        clone
            .call(move |db| db.set_conversation_state(&bob, ConversationState::Blocked, 1))
            .await
            .unwrap();
        assert_eq!(
            db.conversation_state(&bob).await.unwrap(),
            Some(ConversationState::Blocked)
        );
        assert_eq!(db.conversations().await.unwrap().len(), 1);
        let thread = db
            .call(|_| Ok::<_, DbError>(std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("shallot-db"));

        // A job that panics takes the thread down; later calls say so instead of hanging.
        let died: Result<(), DbError> = db.call(|_| panic!("a bug in a job")).await;
        assert!(matches!(died, Err(DbError::Closed)));
        assert!(matches!(db.conversations().await, Err(DbError::Closed)));
    }
}
