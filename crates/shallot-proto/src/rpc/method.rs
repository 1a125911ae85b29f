//! Client RPC method names (storage RPC spec §1): the canonical names and their aliases.

use std::fmt;

/// A client RPC method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `revoke_subaccount`.
    RevokeSubaccount,
    /// `unrevoke_subaccount`.
    UnrevokeSubaccount,
    /// `store`.
    Store,
    /// `retrieve`.
    Retrieve,
    /// `delete`.
    Delete,
    /// `delete_all`.
    DeleteAll,
    /// `delete_before`.
    DeleteBefore,
    /// `expire`.
    Expire,
    /// `expire_all`.
    ExpireAll,
    /// `get_expiries`.
    GetExpiries,
    /// `get_swarm` (alias `get_snodes_for_pubkey`).
    GetSwarm,
    /// `oxend_request`.
    OxendRequest,
    /// `info`.
    Info,
    /// `batch`.
    Batch,
    /// `sequence`.
    Sequence,
    /// `ifelse`.
    IfElse,
}

impl Method {
    /// Every method, in the reference's registration order.
    pub const ALL: [Self; 16] = [
        Self::RevokeSubaccount,
        Self::UnrevokeSubaccount,
        Self::Store,
        Self::Retrieve,
        Self::Delete,
        Self::DeleteAll,
        Self::DeleteBefore,
        Self::Expire,
        Self::ExpireAll,
        Self::GetExpiries,
        Self::GetSwarm,
        Self::OxendRequest,
        Self::Info,
        Self::Batch,
        Self::Sequence,
        Self::IfElse,
    ];

    /// The method a name (or alias) designates; names are case-sensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "get_snodes_for_pubkey" {
            return Some(Self::GetSwarm);
        }
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RevokeSubaccount => "revoke_subaccount",
            Self::UnrevokeSubaccount => "unrevoke_subaccount",
            Self::Store => "store",
            Self::Retrieve => "retrieve",
            Self::Delete => "delete",
            Self::DeleteAll => "delete_all",
            Self::DeleteBefore => "delete_before",
            Self::Expire => "expire",
            Self::ExpireAll => "expire_all",
            Self::GetExpiries => "get_expiries",
            Self::GetSwarm => "get_swarm",
            Self::OxendRequest => "oxend_request",
            Self::Info => "info",
            Self::Batch => "batch",
            Self::Sequence => "sequence",
            Self::IfElse => "ifelse",
        }
    }

    /// A meta-request (`batch`, `sequence`, `ifelse`), which may not appear inside a batch.
    pub const fn is_meta(self) -> bool {
        matches!(self, Self::Batch | Self::Sequence | Self::IfElse)
    }

    /// Entry nodes forward these to the rest of the swarm and answer with every member's result
    /// (spec §3.2).
    pub const fn is_recursive(self) -> bool {
        matches!(
            self,
            Self::Store
                | Self::Delete
                | Self::DeleteAll
                | Self::DeleteBefore
                | Self::Expire
                | Self::ExpireAll
                | Self::RevokeSubaccount
                | Self::UnrevokeSubaccount
        )
    }

    /// Acts on an account and so first checks that the account belongs to this swarm (421
    /// otherwise, spec §3.3): every method except `get_swarm`, `info`, `oxend_request` and the
    /// meta-requests.
    pub const fn checks_swarm(self) -> bool {
        !matches!(
            self,
            Self::GetSwarm
                | Self::Info
                | Self::OxendRequest
                | Self::Batch
                | Self::Sequence
                | Self::IfElse
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
