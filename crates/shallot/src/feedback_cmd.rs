//! `shallot react`, `shallot reply`, `shallot receipts` and `send --wait-read`, and how
//! `shallot inbox` shows message ids, quotes, reactions and read receipts.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use shallot_client::{
    AccountStore, AnyMessage, Db, Direction, Messenger, ReceivedMessage, SentMessage, Update,
};
use shallot_proto::group::GroupId;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::SessionId;

use crate::msg_cmd::{connect, runtime, who, NetArgs};

/// How many characters of a message hash `shallot inbox` prints as its id.
pub const SHORT_ID: usize = 10;

/// A message's id as `shallot inbox` prints it: the start of its hash, which `react`, `reply`
/// and `unsend` accept.
pub fn short_id(id: &MessageHash) -> String {
    id.to_string().chars().take(SHORT_ID).collect()
}

/// `text` on one line, cut to `max` characters.
fn preview(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}

/// `shallot react`.
#[derive(Args)]
pub struct ReactArgs {
    /// The message id as `shallot inbox` prints it (or any unambiguous start of its hash)
    #[arg(value_name = "MESSAGE")]
    message: String,
    /// The emoji, e.g. 👍
    #[arg(value_name = "EMOJI")]
    emoji: String,
    /// Take your reaction back instead
    #[arg(long)]
    remove: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot reply`.
#[derive(Args)]
pub struct ReplyArgs {
    /// The message id as `shallot inbox` prints it (or any unambiguous start of its hash)
    #[arg(value_name = "MESSAGE")]
    message: String,
    /// The reply
    #[arg(value_name = "TEXT")]
    text: String,
    #[command(flatten)]
    net: NetArgs,
}

/// On or off.
#[derive(Clone, Copy, ValueEnum)]
pub enum Switch {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

/// `shallot receipts`.
#[derive(Args)]
pub struct ReceiptsArgs {
    /// Send read receipts (`on`) or not (`off`); without it, show the setting
    #[arg(value_name = "on|off")]
    switch: Option<Switch>,
}

/// Runs `shallot react`.
pub fn react(args: &ReactArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        let message = messenger
            .react(&args.message, &args.emoji, args.remove)
            .await
            .context("could not react")?;
        let done = if args.remove { "Removed" } else { "Sent" };
        let place = match &message {
            AnyMessage::Direct(m) => format!("in your conversation with {}", m.conversation),
            AnyMessage::Group(m) => format!("in group {}", group_name(&messenger, &m.group).await),
        };
        println!(
            "{done} reaction {} on [{}] {place}.",
            args.emoji.trim(),
            short_id(&message.id()),
        );
        save(&messenger).await;
        Ok(())
    })
}

/// Runs `shallot reply`.
pub fn reply(args: &ReplyArgs, dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let messenger = connect(dir, &args.net).await?;
        let sent = messenger
            .reply(&args.message, &args.text)
            .await
            .context("could not send the reply")?;
        let swarm = if is_group_message(&messenger, &sent.hash).await {
            "the group's swarm"
        } else {
            "their swarm"
        };
        println!(
            "Replied: stored on {} node(s) of {swarm} (id {})",
            sent.stored_on,
            short_id(&sent.hash)
        );
        save(&messenger).await;
        Ok(())
    })
}

/// Runs `shallot receipts`: the setting lives in the local database (no network needed).
pub fn receipts(args: &ReceiptsArgs, dir: &Path) -> Result<()> {
    let store = AccountStore::new(dir);
    if !store.exists() {
        bail!(
            "no account in {}: create one with `shallot account new` or `shallot account restore`",
            dir.display()
        );
    }
    let db = Db::open_in_dir(dir, &store.load()?).context("could not open the local database")?;
    if let Some(switch) = args.switch {
        db.set_read_receipts(matches!(switch, Switch::On))?;
    }
    if db.read_receipts()? {
        println!(
            "Read receipts are on: contacts you accepted are told when you have read their \
             messages (`shallot inbox`, `shallot chat`)."
        );
    } else {
        println!("Read receipts are off: nobody is told when you read their messages.");
    }
    Ok(())
}

/// After `send`: waits up to `secs` for the recipient's read receipt.
pub async fn wait_read(
    messenger: &Messenger,
    to: &SessionId,
    sent: &SentMessage,
    secs: u64,
) -> Result<()> {
    eprintln!("Waiting up to {secs} s for {to} to read it…");
    let read = messenger
        .wait_read(&sent.hash, Duration::from_secs(secs))
        .await
        .context("could not wait for the read receipt")?;
    if !read {
        bail!(
            "no read receipt from {to} within {secs} s (they may not have read it yet, or \
             have read receipts off)"
        );
    }
    println!("Read by {to}.");
    Ok(())
}

/// Whether `id` is one of our group messages.
async fn is_group_message(messenger: &Messenger, id: &MessageHash) -> bool {
    let id = *id;
    matches!(
        messenger.db().call(move |db| db.group_message(&id)).await,
        Ok(Some(_))
    )
}

/// A group's name as `inbox` prints it (its ID if unknown).
async fn group_name(messenger: &Messenger, id: &GroupId) -> String {
    messenger
        .group(id)
        .await
        .map_or_else(|_| id.to_string(), |g| g.name())
}

async fn save(messenger: &Messenger) {
    if let Err(e) = messenger.save_network_state().await {
        eprintln!("warning: could not save the node list: {e}");
    }
}

/// The lines `inbox` prints under a message: what it quotes (`> text`) and its reactions,
/// each by `you`, or in a one-to-one conversation `them`, or in a group the member's name.
pub async fn message_extras(messenger: &Messenger, m: &ReceivedMessage) -> Vec<String> {
    let mut lines = Vec::new();
    let id = m.hash;
    let (quote, reactions) = match messenger
        .db()
        .call(move |db| {
            Ok::<_, shallot_client::DbError>((db.quoted_text(&id)?, db.reactions(&id)?))
        })
        .await
    {
        Ok(found) => found,
        Err(e) => {
            eprintln!("warning: could not read the message's quote and reactions: {e}");
            return lines;
        }
    };
    if let Some(quote) = quote {
        lines.push(format!("    > {}", preview(&quote, 80)));
    }
    if !reactions.is_empty() {
        let me = messenger.session_id();
        let mut list = Vec::new();
        for r in &reactions {
            let by = if r.author == me {
                "you".to_owned()
            } else if m.group.is_some() {
                who(messenger, &r.author).await
            } else {
                "them".to_owned()
            };
            list.push(format!("{} {by}", r.emoji));
        }
        lines.push(format!("    reactions: {}", list.join(", ")));
    }
    lines
}

/// Prints the receipts and reactions recorded since the last call.
pub async fn print_updates(messenger: &Messenger) {
    let me = messenger.session_id();
    for update in messenger.take_updates() {
        match update {
            Update::Receipt {
                conversation,
                messages,
                read,
            } => {
                let state = if read { "read" } else { "received" };
                for id in messages {
                    let body = messenger
                        .db()
                        .message(&id)
                        .await
                        .ok()
                        .flatten()
                        .map(|m| preview(&m.body, 40))
                        .unwrap_or_default();
                    println!(
                        "{state} by {}: [{}] {body}",
                        who(messenger, &conversation).await,
                        short_id(&id)
                    );
                }
            }
            Update::Reaction {
                conversation,
                group,
                message,
                author,
                emoji,
                removed,
            } => {
                let by = if author == me {
                    "you".to_owned()
                } else {
                    who(messenger, &author).await
                };
                let verb = if removed { "removed" } else { "reacted" };
                let place = match group {
                    Some(group) => format!("group {}", group_name(messenger, &group).await),
                    None => format!("conversation with {conversation}"),
                };
                println!("{by} {verb} {emoji} on [{}] ({place})", short_id(&message));
            }
        }
    }
}

/// Marks the incoming one-to-one messages among `shown` read (sending read receipts if they
/// are on).
pub async fn mark_shown_read(messenger: &Messenger, shown: &[ReceivedMessage]) {
    let ids: Vec<MessageHash> = shown
        .iter()
        .filter(|m| m.group.is_none() && m.direction == Direction::Incoming)
        .map(|m| m.hash)
        .collect();
    if ids.is_empty() {
        return;
    }
    match messenger.mark_read(&ids).await {
        Ok(outcome) if outcome.receipts > 0 => {
            eprintln!("Sent read receipts for {} message(s).", outcome.receipts);
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not send read receipts: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{preview, short_id};
    use shallot_proto::message_hash::MessageHash;

    #[test]
    fn ids_and_previews_are_short_and_on_one_line() {
        let id = MessageHash::from_bytes([7; 32]);
        assert_eq!(short_id(&id).chars().count(), super::SHORT_ID);
        assert!(id.to_string().starts_with(&short_id(&id)));
        assert_eq!(preview("a\nb", 10), "a b");
        assert_eq!(preview("abcdef", 3), "abc…");
    }
}
