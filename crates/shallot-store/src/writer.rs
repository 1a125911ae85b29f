//! The single writer thread and its group commit (see the crate docs for the design).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::{Context, StoreError};

/// Counters the writer keeps for metrics.
#[derive(Debug, Default)]
pub(crate) struct WriterMetrics {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Write operations acknowledged by those commits.
    pub jobs: AtomicU64,
}

/// One queued write: run (possibly again, if SQLite rolled the whole batch back), then told
/// whether the batch committed.
trait WriteJob: Send {
    /// Runs the operation on the writer connection, remembering its result; true if it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the result to the caller: the operation's own, or `failure` if the batch failed.
    fn finish(self: Box<Self>, failure: Option<&StoreError>);
}

/// Where a write's result goes: a thread blocked on it, or a task awaiting it.
enum Reply<T> {
    Blocking(mpsc::SyncSender<Result<T, StoreError>>),
    Async(tokio::sync::oneshot::Sender<Result<T, StoreError>>),
}

impl<T> Reply<T> {
    fn send(self, result: Result<T, StoreError>) {
        // The caller may have gone away; nothing to do then.
        match self {
            Self::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Self::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// A queued write and the channel its caller waits on.
struct Pending<T, F> {
    op: F,
    result: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

impl<T, F> WriteJob for Pending<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.op)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<&StoreError>) {
        let result = match (failure, self.result) {
            // Operations that failed by themselves keep their own error.
            (_, Some(Err(own))) => Err(own),
            (Some(batch), _) => Err(batch.clone()),
            (None, Some(ok)) => ok,
            (None, None) => Err(StoreError::WriterStopped),
        };
        self.reply.send(result);
    }
}

/// What the writer thread receives.
enum Job {
    /// Joins the next group-committed transaction.
    Batched(Box<dyn WriteJob>),
    /// Runs alone, outside any transaction (WAL checkpoints).
    Alone(Box<dyn WriteJob>),
}

/// Handle to the writer thread; dropping it drains the queue and joins the thread.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<WriterMetrics>,
}

impl Writer {
    /// Starts the writer thread, which owns `conn` from now on.
    pub fn spawn(conn: Connection, max_batch: usize) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel();
        let metrics = Arc::new(WriterMetrics::default());
        let thread_metrics = Arc::clone(&metrics);
        let max_batch = max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("shallot-store-writer".to_owned())
            .spawn(move || writer_loop(&conn, &jobs, max_batch, &thread_metrics))
            .map_err(|err| StoreError::Spawn(Arc::new(err)))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            metrics,
        })
    }

    /// The writer's counters.
    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    /// Runs `op` in the next group commit and blocks until that transaction has committed.
    ///
    /// `op` may run more than once (only if SQLite aborted the batch), so it must not have side
    /// effects outside the connection.
    pub fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, op)
    }

    /// Runs `op` alone on the writer connection, outside any transaction.
    pub fn alone<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, op)
    }

    /// Like [`Writer::write`], but awaits the commit instead of blocking a thread: for async
    /// callers on the hot path (no hand-off to a blocking thread pool).
    pub async fn write_async<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.enqueue(false, op, Reply::Async(reply))?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    fn submit<T, F>(&self, alone: bool, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.enqueue(alone, op, Reply::Blocking(reply))?;
        answer.recv().map_err(|_| StoreError::WriterStopped)?
    }

    fn enqueue<T, F>(&self, alone: bool, op: F, reply: Reply<T>) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let job: Box<dyn WriteJob> = Box::new(Pending {
            op,
            result: None,
            reply,
        });
        let job = if alone {
            Job::Alone(job)
        } else {
            Job::Batched(job)
        };
        self.queue
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(job)
            .map_err(|_| StoreError::WriterStopped)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and exit.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Takes jobs off the queue until it closes: everything queued while the previous transaction
/// ran is committed together in the next one.
fn writer_loop(
    conn: &Connection,
    jobs: &mpsc::Receiver<Job>,
    max_batch: usize,
    metrics: &WriterMetrics,
) {
    let mut held_back: Option<Job> = None;
    loop {
        let first = match held_back.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(mpsc::RecvError) => return,
            },
        };
        let first = match first {
            Job::Alone(mut job) => {
                job.run(conn);
                job.finish(None);
                continue;
            }
            Job::Batched(job) => job,
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(Job::Batched(job)) => batch.push(job),
                Ok(alone) => {
                    held_back = Some(alone);
                    break;
                }
                Err(_) => break,
            }
        }
        let outcome = run_batch(conn, &mut batch);
        if outcome.is_ok() {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            metrics.jobs.fetch_add(count, Ordering::Relaxed);
        }
        for job in batch {
            job.finish(outcome.as_ref().err());
        }
    }
}

/// Runs every job of `batch` in one transaction, each inside its own savepoint so a failing job
/// (e.g. a store that hits the size cap) is undone alone; then commits.
///
/// SQLite may roll back the whole transaction on some errors (`SQLITE_FULL` among them); then
/// the failed job keeps its error and the jobs that had succeeded are run again in a new
/// transaction. Each restart fails at least one more job, so this ends.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    const CONTEXT: &str = "committing a batch of writes";
    let mut failed = vec![false; batch.len()];
    'attempt: loop {
        conn.execute_batch("BEGIN IMMEDIATE").context(CONTEXT)?;
        for (job, failed) in batch.iter_mut().zip(failed.iter_mut()) {
            if *failed {
                continue;
            }
            if let Err(err) = conn.execute_batch("SAVEPOINT job") {
                return Err(abandon(conn, err, CONTEXT));
            }
            if job.run(conn) {
                if let Err(err) = conn.execute_batch("RELEASE job") {
                    return Err(abandon(conn, err, CONTEXT));
                }
                continue;
            }
            *failed = true;
            if conn.is_autocommit() {
                // SQLite already rolled the whole transaction back.
                continue 'attempt;
            }
            if let Err(err) = conn.execute_batch("ROLLBACK TO job; RELEASE job") {
                return Err(abandon(conn, err, CONTEXT));
            }
        }
        return match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(err) => Err(abandon(conn, err, CONTEXT)),
        };
    }
}

/// Rolls back whatever is left of a failed batch and returns the error for every caller in it.
fn abandon(conn: &Connection, err: rusqlite::Error, context: &'static str) -> StoreError {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    crate::error::with_context(err, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(sql: &'static str) -> (Box<dyn WriteJob>, mpsc::Receiver<Result<usize, StoreError>>) {
        let (reply, answer) = mpsc::sync_channel(1);
        let op = move |conn: &Connection| conn.execute(sql, []).context("test insert");
        let job: Box<dyn WriteJob> = Box::new(Pending {
            op,
            result: None,
            reply: Reply::Blocking(reply),
        });
        (job, answer)
    }

    /// SQLite rolls the whole transaction back on SQLITE_FULL; the other writes of the batch
    /// must still commit, and only the overflowing one fails.
    #[test]
    fn a_full_error_fails_only_its_own_write_in_a_batch() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let conn = crate::schema::open_writer(&dir.path().join("db"), 200_000).expect("open");
        let small = "INSERT INTO accounts (type, pubkey) VALUES (1, zeroblob(32))";
        let small2 = "INSERT INTO accounts (type, pubkey) VALUES (2, zeroblob(32))";
        let huge = "INSERT INTO accounts (type, pubkey) VALUES (3, zeroblob(1000000))";
        let (a, a_answer) = job(small);
        let (b, b_answer) = job(huge);
        let (c, c_answer) = job(small2);
        let mut batch = vec![a, b, c];
        run_batch(&conn, &mut batch).expect("batch commits");
        for job in batch {
            job.finish(None);
        }
        assert_eq!(a_answer.recv().expect("a").expect("a ok"), 1);
        assert!(b_answer.recv().expect("b").expect_err("b full").is_full());
        assert_eq!(c_answer.recv().expect("c").expect("c ok"), 1);
        let types: Vec<i64> = conn
            .prepare("SELECT type FROM accounts ORDER BY type")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("select");
        assert_eq!(types, vec![1, 2]);
        assert!(conn.is_autocommit());
    }
}
