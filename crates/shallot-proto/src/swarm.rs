//! Pubkey → swarm mapping (storage RPC spec §8.2, directory spec §3): where an account's messages
//! live. Nodes and clients must agree exactly, or messages go to a swarm nobody polls.

use std::fmt;

use crate::identity::AccountId;

/// A swarm's id on the u64 ring.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct SwarmId(pub u64);

impl SwarmId {
    /// The id oxend gives nodes that are not in any swarm (decommissioned).
    pub const INVALID: Self = Self(u64::MAX);
}

impl fmt::Display for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwarmId({:016x})", self.0)
    }
}

/// An account's position on the swarm ring: XOR of the four big-endian u64 chunks of its key
/// (the type byte is ignored, so `03ab…` and `05ab…` share a swarm).
pub fn swarm_space(account: &AccountId) -> u64 {
    account
        .key()
        .chunks_exact(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            u64::from_be_bytes(word)
        })
        .fold(0, |acc, word| acc ^ word)
}

/// The swarm closest to `space` on the ring; ties go to the lower (left) swarm.
///
/// `sorted_ids` must be sorted ascending. Returns `None` when there are no swarms.
pub fn nearest_swarm(sorted_ids: &[SwarmId], space: u64) -> Option<SwarmId> {
    debug_assert!(sorted_ids.windows(2).all(|w| w[0] <= w[1]));
    let first = *sorted_ids.first()?;
    let right_index = sorted_ids.partition_point(|id| id.0 < space);
    let right = sorted_ids.get(right_index).copied().unwrap_or(first);
    let left = if right_index == 0 || right_index == sorted_ids.len() {
        sorted_ids[sorted_ids.len() - 1]
    } else {
        sorted_ids[right_index - 1]
    };
    let dright = right.0.wrapping_sub(space);
    let dleft = space.wrapping_sub(left.0);
    Some(if dright < dleft { right } else { left })
}

/// The swarm responsible for an account.
pub fn swarm_for(sorted_ids: &[SwarmId], account: &AccountId) -> Option<SwarmId> {
    nearest_swarm(sorted_ids, swarm_space(account))
}
