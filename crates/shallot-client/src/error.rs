//! The client's one error type, and the kind that tells a caller what to do about it
//! (Arti-style: the variant says what happened, [`ErrorKind`] says how to react).

use shallot_directory::NodeRecord;

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The destination rejected our timestamp (406 from a node, 425 from a server). The client
    /// already corrects for the network's time from every reply, so this is rare: retry once after
    /// any successful request; if it persists, ask the user to fix the device clock.
    ClockSkew,
    /// The onion path failed (guard down, relay error, timeout) and the retry budget is spent.
    /// Try again later; the client has already penalised or rebuilt the path.
    PathFailed,
    /// The node answered 421: the account lives elsewhere. The cached swarm was replaced with the
    /// node's list; retry the request (`request_swarm` already does, a bounded number of times).
    SwarmMoved,
    /// The destination node could not be reached or failed internally (5xx, unknown to the
    /// relays). Try another node (another member of the swarm).
    NodeUnreachable,
    /// The destination answered with a 4xx other than 406/421/425 (e.g. 401 bad signature, 400
    /// bad request). Retrying the same request will not help: fix the request or report the bug.
    Rejected {
        /// The destination's HTTP status.
        status: u16,
    },
    /// No member of the account's swarm answered. Retry later; messages are not lost by waiting.
    SwarmUnreachable,
    /// No node pool: every seed failed or answered too few nodes. Check connectivity or the seed
    /// list, then bootstrap again.
    Bootstrap,
    /// A reply could not be understood (bad framing, decryption failure, bad JSON). Report it: it
    /// is a bug or an incompatible node.
    Protocol,
}

/// An error of the client networking core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The destination rejected our clock.
    #[error("clock out of sync with the network (status {status})")]
    ClockSkew {
        /// 406 (node) or 425 (server).
        status: u16,
    },
    /// Every attempt over onion paths failed before reaching the destination.
    #[error("onion path failed after {attempts} attempt(s): {reason}")]
    PathFailed {
        /// Attempts made.
        attempts: usize,
        /// The last failure.
        reason: String,
    },
    /// No usable path could be built from the pool.
    #[error("cannot build an onion path: {0}")]
    NoPath(String),
    /// The node answered 421 with the swarm now responsible for the account.
    #[error("account moved to another swarm ({} member(s) listed)", snodes.len())]
    SwarmMoved {
        /// The members the node listed (may be empty).
        snodes: Vec<NodeRecord>,
    },
    /// The destination (node or server) could not be reached or failed.
    #[error("destination {destination} unreachable: {reason}")]
    NodeUnreachable {
        /// The destination: a node's Ed25519 key in hex, or a server's host.
        destination: String,
        /// Status or transport error.
        reason: String,
    },
    /// The destination refused the request.
    #[error("request rejected with status {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The error text the destination sent.
        body: String,
    },
    /// No member of the swarm answered.
    #[error("no member of the swarm answered ({tried} tried): {last}")]
    SwarmUnreachable {
        /// Members tried.
        tried: usize,
        /// The last member's error.
        last: String,
    },
    /// Bootstrapping the node pool failed.
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    /// A reply could not be understood.
    #[error("protocol error while {what}: {detail}")]
    Protocol {
        /// What was being done.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl Error {
    /// What the caller should do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ClockSkew { .. } => ErrorKind::ClockSkew,
            Self::PathFailed { .. } | Self::NoPath(_) => ErrorKind::PathFailed,
            Self::SwarmMoved { .. } => ErrorKind::SwarmMoved,
            Self::NodeUnreachable { .. } => ErrorKind::NodeUnreachable,
            Self::Rejected { status, .. } => ErrorKind::Rejected { status: *status },
            Self::SwarmUnreachable { .. } => ErrorKind::SwarmUnreachable,
            Self::Bootstrap(_) => ErrorKind::Bootstrap,
            Self::Protocol { .. } => ErrorKind::Protocol,
        }
    }

    pub(crate) fn protocol(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Protocol {
            what,
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_what_to_do() {
        assert_eq!(
            Error::ClockSkew { status: 406 }.kind(),
            ErrorKind::ClockSkew
        );
        assert_eq!(
            Error::Rejected {
                status: 401,
                body: String::new()
            }
            .kind(),
            ErrorKind::Rejected { status: 401 }
        );
        assert_eq!(Error::NoPath("x".into()).kind(), ErrorKind::PathFailed);
    }
}
