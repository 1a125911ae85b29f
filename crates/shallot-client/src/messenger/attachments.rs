//! Messages with files: upload each file to the file server through an onion path, send the
//! message (1:1 or to a group) with their pointers, and download a stored attachment by its id.

use std::path::{Path, PathBuf};

use shallot_proto::group::GroupId;
use shallot_proto::SessionId;

use super::{Messenger, MessengerError, SentMessage};
use crate::attachments::{download, upload_file, FileServer, Progress};
use crate::db::StoredAttachment;
use crate::groups::member::SentToGroup;

impl Messenger {
    /// Encrypts and uploads `files` to `server` (in order; `progress` gets the file's index),
    /// then sends `text` with their pointers to `recipient` like [`Self::send`]. If an upload
    /// fails nothing is sent.
    pub async fn send_files(
        &self,
        recipient: &SessionId,
        text: &str,
        files: &[PathBuf],
        server: &FileServer,
        progress: &mut (dyn FnMut(usize, Progress) + Send),
    ) -> Result<SentMessage, MessengerError> {
        self.note_correspondents(Some(recipient)).await;
        let mut pointers = Vec::with_capacity(files.len());
        for (index, file) in files.iter().enumerate() {
            let pointer =
                upload_file(&self.client, server, file, &mut |p| progress(index, p)).await?;
            pointers.push(pointer);
        }
        self.send_message(recipient, text, pointers, None).await
    }

    /// Encrypts and uploads `files` to `server` like [`Self::send_files`], then sends `text`
    /// with their pointers to group `group` (inside the group-encrypted message, as in 1:1).
    /// If an upload fails nothing is sent.
    pub async fn send_files_to_group(
        &self,
        group: &GroupId,
        text: &str,
        files: &[PathBuf],
        server: &FileServer,
        progress: &mut (dyn FnMut(usize, Progress) + Send),
    ) -> Result<SentToGroup, MessengerError> {
        // Refused before any upload if we cannot write to the group.
        crate::groups::requests::Credential::of(&self.load_group(group).await?)?;
        let mut pointers = Vec::with_capacity(files.len());
        for (index, file) in files.iter().enumerate() {
            let pointer =
                upload_file(&self.client, server, file, &mut |p| progress(index, p)).await?;
            pointers.push(pointer);
        }
        self.send_group_message(group, text, pointers, None).await
    }

    /// The stored attachment whose id is `id` or starts with it.
    pub async fn attachment(&self, id: &str) -> Result<StoredAttachment, MessengerError> {
        let prefix = id.trim().to_owned();
        if prefix.is_empty() {
            return Err(MessengerError::UnknownAttachment(
                "no attachment id given".into(),
            ));
        }
        let mut found = self.db.call(move |db| db.find_attachments(&prefix)).await?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(MessengerError::UnknownAttachment(format!(
                "no attachment {id:?} (ids are printed by `shallot inbox`)"
            ))),
            _ => Err(MessengerError::UnknownAttachment(format!(
                "attachment id prefix {id:?} is ambiguous"
            ))),
        }
    }

    /// Downloads attachment `id` (or an unambiguous prefix) through an onion path, checks and
    /// decrypts it, and saves it at `out`. A URL without a server key (`#p=`) means `server`.
    /// Nothing is written at `out` unless every check passes. The attachment and the bytes
    /// saved.
    pub async fn download_attachment(
        &self,
        id: &str,
        out: &Path,
        server: &FileServer,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(StoredAttachment, u64), MessengerError> {
        let attachment = self.attachment(id).await?;
        let saved = download(
            &self.client,
            &attachment.pointer,
            server.x25519(),
            out,
            progress,
        )
        .await?;
        Ok((attachment, saved))
    }
}
