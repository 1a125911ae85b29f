//! Attachment pointers of messages (1:1 in `attachments`, group in `group_attachments`, each
//! deleted with its message), each under a stable [`AttachmentId`] the user names with
//! `shallot download`. The pointer (URL, key, digest, name, size) is sealed; the tables show
//! only which message has how many attachments.

use prost::Message as _;
use rusqlite::params;
use shallot_proto::attachment::AttachmentPointer;
use shallot_proto::message_hash::MessageHash;

use super::{aad, hash_from_sql, seal_with, Db, DbError};

/// Hex characters of an [`AttachmentId`].
const ID_HEX: usize = 16;

/// A stable name for one attachment of one stored message: 16 hex characters of
/// BLAKE2b(message id, index), the same on every run of this device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttachmentId(String);

impl AttachmentId {
    /// The id of attachment `index` of message `message`.
    pub fn of(message: &MessageHash, index: usize) -> Self {
        use blake2::digest::{Update, VariableOutput};
        let mut hasher = blake2::Blake2bVar::new(ID_HEX / 2)
            .unwrap_or_else(|_| unreachable!("8 bytes is a valid BLAKE2b output length"));
        hasher.update(b"shallot-attachment-id\0");
        hasher.update(message.to_string().as_bytes());
        hasher.update(&(index as u64).to_le_bytes());
        let mut out = [0u8; ID_HEX / 2];
        hasher
            .finalize_variable(&mut out)
            .unwrap_or_else(|_| unreachable!("the buffer has the output length"));
        Self(hex::encode(out))
    }

    /// The id as printed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttachment {
    /// Its stable id.
    pub id: AttachmentId,
    /// The message it came with.
    pub message: MessageHash,
    /// Its position among the message's attachments.
    pub index: usize,
    /// The pointer as the sender wrote it (checked only when downloaded).
    pub pointer: AttachmentPointer,
}

impl StoredAttachment {
    /// The file name the sender gave, made safe to show and to save under: no path
    /// separators or control characters, at most 100 characters; `attachment` if none.
    pub fn file_name(&self) -> String {
        let name: String = self
            .pointer
            .file_name
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
            .take(100)
            .collect();
        let name = name.trim().trim_start_matches('.');
        if name.is_empty() {
            "attachment".to_owned()
        } else {
            name.to_owned()
        }
    }

    /// The plaintext size the sender claims.
    pub fn size(&self) -> u64 {
        self.pointer.size.map_or(0, u64::from)
    }
}

/// Which table a message's attachments go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// 1:1 messages (`messages`).
    Direct,
    /// Group messages (`group_messages`).
    Group,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "attachments",
            Self::Group => "group_attachments",
        }
    }
}

/// Both tables as one, for lookups by message or id.
const BOTH: &str = "(SELECT id, message, idx, pointer FROM attachments
     UNION ALL SELECT id, message, idx, pointer FROM group_attachments)";

impl Db {
    /// Stores the attachment pointers of 1:1 message `message` (already stored); returns them
    /// with their ids. Storing the same message's attachments again changes nothing.
    pub fn insert_attachments(
        &self,
        message: &MessageHash,
        pointers: &[AttachmentPointer],
    ) -> Result<Vec<StoredAttachment>, DbError> {
        self.insert_into(Table::Direct, message, pointers)
    }

    /// Stores the attachment pointers of group message `message` (already stored), as
    /// [`Self::insert_attachments`] does for 1:1 messages.
    pub fn insert_group_attachments(
        &self,
        message: &MessageHash,
        pointers: &[AttachmentPointer],
    ) -> Result<Vec<StoredAttachment>, DbError> {
        self.insert_into(Table::Group, message, pointers)
    }

    fn insert_into(
        &self,
        table: Table,
        message: &MessageHash,
        pointers: &[AttachmentPointer],
    ) -> Result<Vec<StoredAttachment>, DbError> {
        let mut stored = Vec::with_capacity(pointers.len());
        for (index, pointer) in pointers.iter().enumerate() {
            let id = AttachmentId::of(message, index);
            // The same AAD in both tables: an id names one message's attachment either way.
            let sealed = seal_with(
                &self.cipher,
                &aad("attachments", "pointer", id.as_str()),
                &pointer.encode_to_vec(),
            );
            self.conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO {} (id, message, idx, pointer)
                     VALUES (?1, ?2, ?3, ?4)",
                    table.name()
                ),
                params![
                    id.as_str(),
                    message.to_string(),
                    i64::try_from(index).unwrap_or(i64::MAX),
                    sealed
                ],
            )?;
            stored.push(StoredAttachment {
                id,
                message: *message,
                index,
                pointer: pointer.clone(),
            });
        }
        Ok(stored)
    }

    /// The attachments of message `message` (1:1 or group), in order.
    pub fn attachments(&self, message: &MessageHash) -> Result<Vec<StoredAttachment>, DbError> {
        self.query_attachments(
            "WHERE message = ?1 ORDER BY idx",
            params![message.to_string()],
        )
    }

    /// The attachments whose id starts with `prefix` (as a user types it).
    pub fn find_attachments(&self, prefix: &str) -> Result<Vec<StoredAttachment>, DbError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        self.query_attachments(
            "WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
            params![prefix],
        )
    }

    fn query_attachments(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredAttachment>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, message, idx, pointer FROM {BOTH} {filter}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, message, index, sealed) = row?;
            let bytes = self.open_value(&aad("attachments", "pointer", &id), &sealed)?;
            let pointer = AttachmentPointer::decode(bytes.as_slice())
                .map_err(|_| DbError::Corrupt("attachments.pointer".into()))?;
            out.push(StoredAttachment {
                id: AttachmentId(id),
                message: hash_from_sql(&message, "attachments.message")?,
                index: usize::try_from(index)
                    .map_err(|_| DbError::Corrupt("attachments.idx".into()))?,
                pointer,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_stable_and_names_are_safe() {
        let hash: MessageHash = MessageHash::compute(
            &shallot_proto::Identity::from_seed([1; 32])
                .session_id()
                .account(),
            shallot_proto::Namespace::DEFAULT,
            b"x",
        );
        let a = AttachmentId::of(&hash, 0);
        assert_eq!(a, AttachmentId::of(&hash, 0));
        assert_ne!(a, AttachmentId::of(&hash, 1));
        assert_eq!(a.as_str().len(), ID_HEX);
        let named = |name: &str| StoredAttachment {
            id: a.clone(),
            message: hash,
            index: 0,
            pointer: AttachmentPointer {
                file_name: Some(name.into()),
                ..AttachmentPointer::default()
            },
        };
        assert_eq!(named("../../etc/passwd").file_name(), "etcpasswd");
        assert_eq!(named("a\nb.txt").file_name(), "ab.txt");
        assert_eq!(named("").file_name(), "attachment");
        assert_eq!(named("photo.jpg").file_name(), "photo.jpg");
    }
}
