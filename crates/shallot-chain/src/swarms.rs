//! The one place the chain calls swarm assignment (spec §2): `shallot_directory::assignment`,
//! the port of oxend's `calc_swarm_changes`, shared with everything else that needs it.

use std::collections::BTreeMap;

use shallot_directory::assignment::{calc_swarm_changes, swarm_seed};
use shallot_proto::swarm::SwarmId;

/// Places unassigned nodes (key [`SwarmId::INVALID`]) and rebalances swarms, seeded by the block
/// hash. The map must hold only active nodes, each list in pubkey order.
pub(crate) fn assign_swarms(swarms: &mut BTreeMap<SwarmId, Vec<[u8; 32]>>, block_hash: &[u8; 32]) {
    calc_swarm_changes(swarms, swarm_seed(block_hash));
}
