//! `shallot group …`: group chats in their own swarms (Session's "03" groups). The group's
//! swarm never learns who its members are: they read and write with blinded tokens.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use shallot_client::groups::{GroupStatus, GroupSummary};
use shallot_client::{Direction, Messenger, ReceivedMessage};
use shallot_proto::group::{GroupId, Removal, SendStatus};
use shallot_proto::SessionId;

use crate::msg_cmd::{connect, parse_duration, parse_sid, runtime, utc, who, NetArgs};

/// `shallot group`.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group (you are its admin) and invite members; prints the group ID
    Create(CreateArgs),
    /// Invite people to a group you administer (they see it as a request until they accept)
    Invite(InviteArgs),
    /// Accept a group invite: the group's messages start arriving with `shallot inbox`
    Accept(GroupArgs),
    /// Decline a group invite (the group is forgotten)
    Decline(GroupArgs),
    /// Fetch new messages, then list your groups and invites
    List(ListArgs),
    /// Fetch new messages, then list a group's members and their status
    Members(GroupArgs),
    /// Fetch new messages, then show a group's messages
    Messages(GroupArgs),
    /// Remove members from a group you administer: they can no longer read or write it
    /// (their tokens are revoked and the group key changes), and are told so
    Remove(MembersArgs),
    /// Make a member an admin of a group you administer (they get the group's key)
    Promote(PromoteArgs),
    /// Leave a group (admins destroy it instead)
    Leave(GroupArgs),
    /// Rename a group you administer
    Rename(RenameArgs),
    /// Set the description of a group you administer (empty text clears it)
    Describe(DescribeArgs),
    /// Set the disappearing-messages timer of a group you administer (e.g. 1h, 1d, off)
    Disappear(DisappearArgs),
    /// Delete a group's messages sent until now, for every member (you administer it)
    Clear(GroupArgs),
    /// Destroy a group you administer: every member removes it
    Destroy(GroupArgs),
}

/// `shallot group create`.
#[derive(Args)]
pub struct CreateArgs {
    /// The group's name (1–100 bytes)
    #[arg(value_name = "NAME")]
    name: String,
    /// Invite this Session ID (repeatable)
    #[arg(long = "member", value_name = "SESSION_ID")]
    members: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
}

/// A command about one group.
#[derive(Args)]
pub struct GroupArgs {
    /// The group ID (66 hex characters starting with 03)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group list`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group invite`.
#[derive(Args)]
pub struct InviteArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// The Session IDs to invite
    #[arg(value_name = "SESSION_ID", required = true)]
    members: Vec<String>,
    /// Also give them the group's earlier messages (every key held so far)
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group remove`.
#[derive(Args)]
pub struct MembersArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// The members' Session IDs
    #[arg(value_name = "SESSION_ID", required = true)]
    members: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group promote`.
#[derive(Args)]
pub struct PromoteArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// The member's Session ID
    #[arg(value_name = "SESSION_ID")]
    member: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group rename`.
#[derive(Args)]
pub struct RenameArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// The new name (1–100 bytes)
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group describe`.
#[derive(Args)]
pub struct DescribeArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// The description (up to 2000 bytes; empty clears it)
    #[arg(value_name = "TEXT")]
    text: String,
    #[command(flatten)]
    net: NetArgs,
}

/// `shallot group disappear`.
#[derive(Args)]
pub struct DisappearArgs {
    /// The group ID (03…)
    #[arg(value_name = "GROUP_ID")]
    group: String,
    /// How long messages live after they are sent: e.g. 1h, 1d, or `off` (at least 10s)
    #[arg(value_name = "DURATION")]
    duration: String,
    #[command(flatten)]
    net: NetArgs,
}

fn parse_group(text: &str) -> Result<GroupId> {
    text.trim().parse().map_err(|e| {
        anyhow::anyhow!("{text:?} is not a group ID (66 hex characters starting with 03): {e}")
    })
}

fn parse_sids(texts: &[String]) -> Result<Vec<SessionId>> {
    texts.iter().map(|t| parse_sid(t)).collect()
}

/// Runs `shallot group …`.
#[allow(clippy::too_many_lines)] // One arm per subcommand.
pub fn run(command: GroupCommand, dir: &Path) -> Result<()> {
    match command {
        GroupCommand::Create(args) => {
            let members = parse_sids(&args.members)?;
            with(dir, &args.net, |m| async move {
                let id = m
                    .create_group(&args.name, &members)
                    .await
                    .context("could not create the group")?;
                eprintln!(
                    "Created the group {:?} with {} invite(s) sent.",
                    args.name,
                    members.len()
                );
                println!("{id}");
                Ok(())
            })
        }
        GroupCommand::Invite(args) => {
            let (id, members) = (parse_group(&args.group)?, parse_sids(&args.members)?);
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                let sent = m
                    .invite_to_group(&id, &members, args.history)
                    .await
                    .context("could not invite")?;
                let history = if args.history {
                    " with the group's history"
                } else {
                    ""
                };
                println!("Invited {sent} member(s){history}.");
                Ok(())
            })
        }
        GroupCommand::Accept(args) => one(dir, &args, |m, id| async move {
            m.accept_group(&id).await.context("could not accept")?;
            println!(
                "Joined {}: its messages now arrive with `shallot inbox`.",
                name(&m, &id).await
            );
            Ok(())
        }),
        GroupCommand::Decline(args) => one(dir, &args, |m, id| async move {
            m.decline_group(&id).await.context("could not decline")?;
            println!("Declined the invite to {id}.");
            Ok(())
        }),
        GroupCommand::List(args) => with(dir, &args.net, |m| async move {
            fetch(&m).await;
            list(&m).await
        }),
        GroupCommand::Members(args) => one(dir, &args, |m, id| async move {
            fetch(&m).await;
            members(&m, &id).await
        }),
        GroupCommand::Messages(args) => one(dir, &args, |m, id| async move {
            fetch(&m).await;
            let group = m.group(&id).await?;
            let messages = m.db().call(move |db| db.group_messages(&id)).await?;
            if messages.is_empty() {
                println!("No messages in {}.", group.name());
            }
            for message in messages {
                let from = match message.direction {
                    Direction::Outgoing => "you".to_owned(),
                    Direction::Incoming => member_name(&m, Some(&group), &message.sender).await,
                };
                println!(
                    "{}  [group {}] {from}: {}",
                    utc(message.timestamp),
                    group.name(),
                    message.body
                );
                let hash = message.id;
                let attachments = m.db().call(move |db| db.attachments(&hash)).await?;
                crate::attach_cmd::print_attachments(&attachments);
            }
            Ok(())
        }),
        GroupCommand::Remove(args) => {
            let (id, members) = (parse_group(&args.group)?, parse_sids(&args.members)?);
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                m.remove_from_group(&id, &members)
                    .await
                    .context("could not remove")?;
                println!(
                    "Removed {} member(s): the group key changed and their access was revoked.",
                    members.len()
                );
                Ok(())
            })
        }
        GroupCommand::Promote(args) => {
            let (id, member) = (parse_group(&args.group)?, parse_sid(&args.member)?);
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                m.promote_in_group(&id, &member)
                    .await
                    .context("could not promote")?;
                println!("{member} is now an admin of {}.", name(&m, &id).await);
                Ok(())
            })
        }
        GroupCommand::Leave(args) => one(dir, &args, |m, id| async move {
            m.leave_group(&id).await.context("could not leave")?;
            println!("Left the group {id}.");
            Ok(())
        }),
        GroupCommand::Rename(args) => {
            let id = parse_group(&args.group)?;
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                m.rename_group(&id, &args.name)
                    .await
                    .context("could not rename")?;
                println!("Renamed the group to {:?}.", args.name);
                Ok(())
            })
        }
        GroupCommand::Describe(args) => {
            let id = parse_group(&args.group)?;
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                m.describe_group(&id, &args.text)
                    .await
                    .context("could not set the description")?;
                println!("Description set.");
                Ok(())
            })
        }
        GroupCommand::Disappear(args) => {
            let id = parse_group(&args.group)?;
            let secs = parse_duration(&args.duration)?.unwrap_or(0);
            with(dir, &args.net, |m| async move {
                fetch(&m).await;
                m.set_group_timer(&id, secs)
                    .await
                    .context("could not set the timer")?;
                if secs == 0 {
                    println!("Messages in the group no longer disappear.");
                } else {
                    println!("Messages in the group now disappear {secs}s after they are sent.");
                }
                Ok(())
            })
        }
        GroupCommand::Clear(args) => one(dir, &args, |m, id| async move {
            fetch(&m).await;
            m.clear_group_history(&id)
                .await
                .context("could not clear the history")?;
            println!("Deleted the group's messages until now, for every member.");
            Ok(())
        }),
        GroupCommand::Destroy(args) => one(dir, &args, |m, id| async move {
            fetch(&m).await;
            m.destroy_group(&id).await.context("could not destroy")?;
            println!("Destroyed the group {id}.");
            Ok(())
        }),
    }
}

/// Connects, runs `job`, and saves the network state.
fn with<F, Fut>(dir: &Path, net: &NetArgs, job: F) -> Result<()>
where
    F: FnOnce(std::sync::Arc<Messenger>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    runtime()?.block_on(async {
        let messenger = std::sync::Arc::new(connect(dir, net).await?);
        let result = job(std::sync::Arc::clone(&messenger)).await;
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        result
    })
}

/// [`with`] for a command about one group.
fn one<F, Fut>(dir: &Path, args: &GroupArgs, job: F) -> Result<()>
where
    F: FnOnce(std::sync::Arc<Messenger>, GroupId) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let id = parse_group(&args.group)?;
    with(dir, &args.net, |m| job(m, id))
}

/// Fetches new messages first (so the group's state is current); failure is a warning.
async fn fetch(messenger: &Messenger) {
    if let Err(e) = messenger.receive().await {
        eprintln!("warning: could not fetch new messages: {e}");
    }
}

async fn name(messenger: &Messenger, id: &GroupId) -> String {
    messenger
        .group(id)
        .await
        .map_or_else(|_| id.to_string(), |g| format!("{:?}", g.name()))
}

fn status(summary: &GroupSummary) -> String {
    match &summary.status {
        GroupStatus::Invited { inviter } if inviter.is_empty() => "invited".into(),
        GroupStatus::Invited { inviter } => format!("invited by {inviter}"),
        GroupStatus::Joined if summary.admin => "admin".into(),
        GroupStatus::Joined => "member".into(),
        GroupStatus::Kicked => "removed".into(),
        GroupStatus::Destroyed => "destroyed".into(),
    }
}

async fn list(messenger: &Messenger) -> Result<()> {
    let groups = messenger.groups().await?;
    if groups.is_empty() {
        println!("No groups.");
    }
    for g in &groups {
        println!(
            "{}  {}  ({}, {} member(s))",
            g.id,
            g.name,
            status(g),
            g.members
        );
    }
    if groups
        .iter()
        .any(|g| matches!(g.status, GroupStatus::Invited { .. }))
    {
        println!("Answer invites with `shallot group accept|decline <group-id>`.");
    }
    Ok(())
}

async fn members(messenger: &Messenger, id: &GroupId) -> Result<()> {
    let group = messenger.group(id).await?;
    let members = group.members();
    if members.members.is_empty() {
        bail!("no member list yet for {} (not fetched)", group.name());
    }
    println!("{} ({} member(s)):", group.name(), members.members.len());
    for (sid, m) in &members.members {
        let role = if m.admin { "admin" } else { "member" };
        let state = match (m.removal, m.invite) {
            (Removal::Member | Removal::MemberAndMessages, _) => ", being removed",
            (_, SendStatus::Sent | SendStatus::NotSent) if !m.admin => ", invited",
            (_, SendStatus::Failed) if !m.admin => ", invite failed",
            _ => "",
        };
        let name = if m.name.is_empty() {
            String::new()
        } else {
            format!("{}  ", m.name)
        };
        let you = if *sid == messenger.session_id() {
            " (you)"
        } else {
            ""
        };
        println!("  {name}{sid}  {role}{state}{you}");
    }
    Ok(())
}

/// Runs `shallot send GROUP_ID TEXT`.
pub fn send(
    group: &str,
    text: &str,
    files: &[PathBuf],
    server: &crate::attach_cmd::FileServerArgs,
    net: &NetArgs,
    dir: &Path,
) -> Result<()> {
    let id = parse_group(group)?;
    crate::attach_cmd::check_files(files)?;
    let text = text.to_owned();
    with(dir, net, |m| async move {
        // New keys first: a message sealed with a key the others do not hold yet is lost.
        fetch(&m).await;
        let sent = if files.is_empty() {
            m.send_to_group(&id, &text).await
        } else {
            let server = server.resolve(&m, dir).await?;
            let mut printers: Vec<_> = files
                .iter()
                .map(|f| crate::attach_cmd::progress_printer(f.display().to_string()))
                .collect();
            m.send_files_to_group(&id, &text, files, &server, &mut |i, p| {
                if let Some(print) = printers.get_mut(i) {
                    print(p);
                }
            })
            .await
        }
        .context("sending to the group failed")?;
        println!(
            "Sent to {}: stored on {} node(s) of its swarm (id {})",
            name(&m, &id).await,
            sent.stored_on,
            sent.hash
        );
        crate::attach_cmd::print_attachments(&sent.attachments);
        Ok(())
    })
}

/// Prints a group message (`[group NAME] SENDER: TEXT`) or invite (as a request).
pub async fn print_group_message(messenger: &Messenger, id: &GroupId, m: &ReceivedMessage) {
    let group = messenger.group(id).await.ok();
    let group_name = group
        .as_ref()
        .map_or_else(|| m.body.clone(), shallot_client::groups::Group::name);
    let invited = group
        .as_ref()
        .is_some_and(|g| matches!(g.record.status, GroupStatus::Invited { .. }));
    let from = match m.direction {
        Direction::Outgoing => "you".to_owned(),
        Direction::Incoming => member_name(messenger, group.as_ref(), &m.sender).await,
    };
    if invited {
        println!(
            "{}  [group invite] {from} invites you to {group_name:?} ({id}); answer with \
             `shallot group accept|decline {id}`",
            utc(m.timestamp)
        );
    } else if is_invite(messenger, m).await {
        println!(
            "{}  [group invite] {from} added you to {group_name:?} ({id})",
            utc(m.timestamp)
        );
    } else {
        // Its id (for `react` and `reply`), then as a reply what it quotes, its files and its
        // reactions.
        let id = crate::feedback_cmd::short_id(&m.hash);
        let extras = crate::feedback_cmd::message_extras(messenger, m).await;
        let head = format!("{}  [{id}] [group {group_name}] {from}:", utc(m.timestamp));
        match extras.split_first() {
            Some((quote, rest)) if quote.starts_with("    >") => {
                println!("{head}");
                println!("{quote}");
                println!("    {}", m.body);
                crate::attach_cmd::print_attachments(&m.attachments);
                for line in rest {
                    println!("{line}");
                }
            }
            _ => {
                println!("{head} {}", m.body);
                crate::attach_cmd::print_attachments(&m.attachments);
                for line in &extras {
                    println!("{line}");
                }
            }
        }
    }
}

/// A member as printed: the name the group's member list gives, else as [`who`] does.
async fn member_name(
    messenger: &Messenger,
    group: Option<&shallot_client::groups::Group>,
    id: &SessionId,
) -> String {
    let listed = group
        .and_then(|g| g.members().members.get(id).map(|m| m.name.clone()))
        .filter(|n| !n.is_empty());
    match listed {
        Some(name) => format!("{name} ({id})"),
        None => who(messenger, id).await,
    }
}

/// Whether `m` is an invite (it came through our inbox, not the group's swarm).
async fn is_invite(messenger: &Messenger, m: &ReceivedMessage) -> bool {
    let (id, hash) = (m.group, m.hash);
    let Some(id) = id else { return false };
    messenger
        .db()
        .call(move |db| db.group_messages(&id))
        .await
        .is_ok_and(|messages| !messages.iter().any(|g| g.id == hash))
}
