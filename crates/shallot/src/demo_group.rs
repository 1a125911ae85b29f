//! The group part of `shallot devnet demo`: three accounts in a group exchange messages in the
//! group's own swarm, then the admin reads back everything that swarm stores, to show what it
//! learned: a group ID, sizes and times, and no member's Session ID.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use shallot_client::groups::poll::POLLED;
use shallot_client::Messenger;
use shallot_proto::group::GroupId;
use shallot_proto::{Namespace, SessionId};

/// Polls `who` until the group message (or, for an invite, the group name) `body` of `group`
/// shows.
async fn fetch_group(who: &Messenger, group: &GroupId, body: &str) -> Result<()> {
    for _ in 0..40 {
        let got = who.receive().await.context("fetching failed")?;
        if got
            .iter()
            .any(|m| m.group == Some(*group) && m.body == body)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("{body:?} did not arrive within 10 s")
}

/// Whether `data` holds `id` in any form a node could match: its 32 raw bytes, its hex Session
/// ID, or its hex key in either case.
fn holds(data: &[u8], id: &SessionId) -> bool {
    let raw = id.x25519().as_bytes();
    let hex = id.to_string();
    data.windows(32).any(|w| w == raw)
        || data.windows(hex.len()).any(|w| w == hex.as_bytes())
        || data
            .windows(64)
            .any(|w| w.eq_ignore_ascii_case(&hex.as_bytes()[2..]))
}

fn namespace_name(ns: Namespace) -> &'static str {
    match ns {
        Namespace::GROUP_MESSAGES => "messages",
        Namespace::GROUP_KEYS => "key messages",
        Namespace::GROUP_INFO => "info configs",
        Namespace::GROUP_MEMBERS => "member configs",
        _ => "kicked notices",
    }
}

/// Alice creates a group with Bob and Carol, they accept, Alice and Bob each write once and the
/// others read it; then what the group swarm holds. Fails if a member's ID is in it.
pub(crate) async fn run(people: [(&str, &Messenger); 3]) -> Result<()> {
    let [(alice_name, alice), (bob_name, bob), (carol_name, carol)] = people;
    let ids: Vec<SessionId> = people.iter().map(|(_, m)| m.session_id()).collect();
    let group = alice
        .create_group("Demo group", &ids[1..])
        .await
        .context("creating the group failed")?;
    println!("  {alice_name} created the group {group} and invited {bob_name} and {carol_name}");
    for (name, who) in [(bob_name, bob), (carol_name, carol)] {
        fetch_group(who, &group, "Demo group").await?;
        who.accept_group(&group).await.context("accepting failed")?;
        println!("  {name} saw the invite (a message request) and accepted it");
    }
    for ((from_name, from), text, readers) in [
        (
            (alice_name, alice),
            "Hello group!",
            [(bob_name, bob), (carol_name, carol)],
        ),
        (
            (bob_name, bob),
            "Hi both, Bob here",
            [(alice_name, alice), (carol_name, carol)],
        ),
    ] {
        let sent = from
            .send_to_group(&group, text)
            .await
            .context("sending to the group failed")?;
        println!(
            "  {from_name} wrote {text:?} to the group: stored on {} node(s) of its swarm",
            sent.stored_on
        );
        for (name, who) in readers {
            fetch_group(who, &group, text).await?;
            println!("  {name} read {text:?} in the group");
        }
    }

    let mut counts = Vec::new();
    let (mut items, mut bytes, mut found) = (0, 0, 0);
    for ns in POLLED {
        let stored = alice
            .group_stored(&group, ns)
            .await
            .context("retrieving from the group swarm failed")?;
        items += stored.len();
        bytes += stored.iter().map(|m| m.data.len()).sum::<usize>();
        found += stored
            .iter()
            .filter(|m| ids.iter().any(|id| holds(&m.data, id)))
            .count();
        if !stored.is_empty() {
            counts.push(format!("{}: {}", namespace_name(ns), stored.len()));
        }
    }
    println!(
        "  The group's swarm stores {items} items ({bytes} bytes) under the group ID alone: {}",
        counts.join(", ")
    );
    if found > 0 {
        bail!("{found} item(s) in the group swarm hold a member's Session ID");
    }
    println!(
        "  What the group's swarm learned: the group ID, item sizes and times; no member Session \
         ID (none of the three appears in any stored item, raw or hex); members authenticate to \
         it with subaccount tokens, not their Session IDs"
    );
    Ok(())
}
