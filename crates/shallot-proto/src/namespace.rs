//! Storage namespaces (storage RPC spec §2.2): a 16-bit signed number that splits an account's
//! mailbox, and whose value decides who may store and retrieve there.

use std::fmt;

/// A storage namespace, −32768…32767; an omitted namespace is 0.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Namespace(pub i16);

impl Namespace {
    /// The default namespace: direct messages to a user.
    pub const DEFAULT: Self = Self(0);
    /// User profile config.
    pub const USER_PROFILE: Self = Self(2);
    /// Contacts config.
    pub const CONTACTS: Self = Self(3);
    /// Conversation-info-volatile config.
    pub const CONVO_INFO_VOLATILE: Self = Self(4);
    /// User groups config.
    pub const USER_GROUPS: Self = Self(5);
    /// Groups v2 messages.
    pub const GROUP_MESSAGES: Self = Self(11);
    /// Groups v2 keys.
    pub const GROUP_KEYS: Self = Self(12);
    /// Groups v2 info.
    pub const GROUP_INFO: Self = Self(13);
    /// Groups v2 members.
    pub const GROUP_MEMBERS: Self = Self(14);
    /// Legacy closed groups (no auth to store or retrieve).
    pub const LEGACY_CLOSED: Self = Self(-10);

    /// Anyone may store here without a signature (`ns % 10 == 0`); TTL is capped at 14 days.
    pub const fn is_public_inbox(self) -> bool {
        self.0 % 10 == 0
    }

    /// One message at a time, publicly retrievable, authenticated store (−1, −21, −41, …).
    pub const fn is_public_outbox(self) -> bool {
        self.0 < 0 && (-(self.0 as i32)) % 20 == 1
    }

    /// Retrieval needs no signature (legacy closed groups, public outboxes).
    pub const fn is_public_retrieve(self) -> bool {
        self.0 == Self::LEGACY_CLOSED.0 || self.is_public_outbox()
    }

    /// Revoked subaccounts may still retrieve here (−11, −111, −211, …).
    pub const fn is_unrevocable(self) -> bool {
        self.0 < 0 && (-(self.0 as i32)) % 100 == 11
    }

    /// The text used in hashes and signatures: empty for 0, decimal otherwise.
    pub fn sig_text(self) -> String {
        if self.0 == 0 {
            String::new()
        } else {
            self.0.to_string()
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A namespace selector for the `*_all` methods: one namespace or every namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamespaceSelector {
    /// Just this namespace.
    One(Namespace),
    /// Every namespace of the account (`"all"`).
    All,
}

impl NamespaceSelector {
    /// The text used in signatures: `""` for 0, `"all"`, or decimal.
    pub fn sig_text(self) -> String {
        match self {
            Self::One(ns) => ns.sig_text(),
            Self::All => "all".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_spec_rules() {
        for ns in [0, 40, -10, -30, 10] {
            assert!(Namespace(ns).is_public_inbox(), "{ns}");
        }
        for ns in [1, 2, 3, -1, -11, 11] {
            assert!(!Namespace(ns).is_public_inbox(), "{ns}");
        }
        for ns in [-1, -21, -41, -32761] {
            assert!(Namespace(ns).is_public_outbox(), "{ns}");
        }
        for ns in [1, 21, -2, -11, -20] {
            assert!(!Namespace(ns).is_public_outbox(), "{ns}");
        }
        for ns in [-11, -111, -211] {
            assert!(Namespace(ns).is_unrevocable(), "{ns}");
        }
        for ns in [11, -1, -21, -12] {
            assert!(!Namespace(ns).is_unrevocable(), "{ns}");
        }
        assert!(Namespace(-10).is_public_retrieve());
        assert!(Namespace(-21).is_public_retrieve());
        assert!(!Namespace(0).is_public_retrieve());
        // Extreme value must not overflow.
        assert!(!Namespace(i16::MIN).is_public_outbox());
    }

    #[test]
    fn signature_text_omits_default_namespace() {
        assert_eq!(Namespace(0).sig_text(), "");
        assert_eq!(Namespace(-42).sig_text(), "-42");
        assert_eq!(NamespaceSelector::All.sig_text(), "all");
        assert_eq!(NamespaceSelector::One(Namespace(0)).sig_text(), "");
    }
}
