//! Profile pictures on the command line: `shallot profile --picture FILE | --remove-picture |
//! --show ID`, `shallot picture [ID] --out PATH`, and the keep-alive `send` and `inbox` run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use shallot_client::{KeepAlive, Messenger};
use shallot_proto::SessionId;

use crate::attach_cmd::FileServerArgs;

/// `shallot picture`.
#[derive(Args)]
pub struct PictureArgs {
    /// Whose picture: a contact's Session ID (default: your own, as set on any of your devices)
    #[arg(value_name = "SESSION_ID")]
    id: Option<String>,
    /// Where to save the image (replaced if it exists; written only once the picture checks out)
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    #[command(flatten)]
    files: FileServerArgs,
    #[command(flatten)]
    net: crate::msg_cmd::NetArgs,
}

/// `None` for our own ID (or none given), else the contact.
fn owner(messenger: &Messenger, id: Option<&str>) -> Result<Option<SessionId>> {
    let Some(id) = id else { return Ok(None) };
    let id: SessionId = id
        .trim()
        .parse()
        .with_context(|| format!("{id:?} is not a Session ID"))?;
    Ok((id != messenger.session_id()).then_some(id))
}

/// Runs `shallot picture`: fetches (or takes from the cache) a profile picture and saves it.
pub fn picture(args: &PictureArgs, dir: &Path) -> Result<()> {
    crate::msg_cmd::runtime()?.block_on(async {
        let messenger = crate::msg_cmd::connect(dir, &args.net).await?;
        let who = owner(&messenger, args.id.as_deref())?;
        let server = args.files.resolve(&messenger, dir).await?;
        let picture = messenger
            .profile_picture(who.as_ref(), &server)
            .await
            .context("could not get the profile picture")?;
        if let Err(e) = messenger.save_network_state().await {
            eprintln!("warning: could not save the node list: {e}");
        }
        write_private(&args.out, &picture.image)?;
        let whose = who.map_or_else(|| "your".to_owned(), |id| format!("{id}'s"));
        println!(
            "Saved {whose} profile picture ({} bytes{}) to {}",
            picture.image.len(),
            if picture.downloaded {
                ", downloaded"
            } else {
                ", from the cache"
            },
            args.out.display()
        );
        Ok(())
    })
}

/// Writes `bytes` to a temporary file beside `out` (readable only by us), then renames it to
/// `out`, so a reader never sees half a picture.
fn write_private(out: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.part", std::process::id()));
    let temp = out.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot save {}", out.display()));
    }
    Ok(())
}

/// `--picture FILE`: uploads it and makes it ours.
pub async fn set(
    messenger: &Messenger,
    file: &Path,
    files: &FileServerArgs,
    dir: &Path,
) -> Result<()> {
    let server = files.resolve(messenger, dir).await?;
    messenger
        .set_profile_picture(file, &server)
        .await
        .with_context(|| format!("could not set {} as your profile picture", file.display()))?;
    println!(
        "Profile picture set: contacts get it with your next message, and your other devices \
         on their next poll."
    );
    Ok(())
}

/// `--remove-picture`.
pub async fn remove(messenger: &Messenger) -> Result<()> {
    messenger
        .remove_profile_picture()
        .await
        .context("removed here, but pushing it to your other devices failed")?;
    println!("Profile picture removed: your next messages carry none.");
    Ok(())
}

/// The `Picture:` line of `shallot profile` for `who` (`None`: us).
pub async fn describe(messenger: &Messenger, who: Option<&SessionId>) -> Result<String> {
    let db = messenger.db();
    let known = match who {
        None => db.own_profile().await?.picture.is_some(),
        Some(id) => db
            .contact_picture(id)
            .await?
            .is_some_and(|p| p.picture.is_some()),
    };
    if !known {
        return Ok("Picture: none".into());
    }
    let owner = who.copied();
    let cached = db.call(move |db| db.cached_picture(owner.as_ref())).await?;
    let id = who.map_or_else(String::new, |id| format!("{id} "));
    Ok(match cached {
        Some(path) => format!(
            "Picture: yes, cached ({} bytes encrypted); save it with `shallot picture {id}--out PATH`",
            std::fs::metadata(path).map_or(0, |m| m.len())
        ),
        None => format!("Picture: yes, not downloaded yet; `shallot picture {id}--out PATH` fetches it"),
    })
}

/// `--show ID`: a contact's name and picture.
pub async fn show(messenger: &Messenger, id: &str) -> Result<()> {
    let Some(contact) = owner(messenger, Some(id))? else {
        return Ok(());
    };
    match messenger.db().contact_name(&contact).await? {
        Some(name) => println!("Name: {name}"),
        None => println!("Name: unknown"),
    }
    println!("{}", describe(messenger, Some(&contact)).await?);
    println!("Session ID: {contact}");
    Ok(())
}

/// Keeps our picture alive on the file server when due (best effort: `send` and `inbox` call
/// it; problems are warnings). Uses the pinned file server; does nothing without one.
pub async fn keep_alive(messenger: &Messenger, dir: &Path) {
    let Ok(own) = messenger.db().own_profile().await else {
        return;
    };
    let now = messenger.client().clock().now_ms() / 1000;
    if !shallot_client::messenger::keep_alive_due(&own, now) {
        return;
    }
    let Ok(server) = FileServerArgs::default().resolve(messenger, dir).await else {
        return;
    };
    match messenger.keep_picture_alive(&server, false).await {
        Ok(KeepAlive::Reuploaded { .. }) => {
            eprintln!("Your profile picture had expired on the file server: uploaded it again.");
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not keep your profile picture on the file server: {e}"),
    }
}
