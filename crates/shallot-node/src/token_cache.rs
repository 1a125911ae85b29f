//! Subaccount tokens whose owner signature this node verified: a group member signs every
//! request with the same token (five per waiting retrieve, one after each message it reads),
//! so each verification after the first is the same Ed25519 check again. Only successes are
//! kept, keyed by owner key, token and signature together; revocation is looked up at every
//! request as before.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::{Ed25519Pub, Signature};

/// Most verified tokens kept; past it the set starts over (a flood of fresh tokens costs the
/// verifications it would have cost anyway).
pub const MAX_VERIFIED_TOKENS: usize = 4096;

/// One verified token: owner key, token and signature bytes.
type Entry = ([u8; 32], [u8; 36], [u8; 64]);

/// The subaccount tokens verified so far.
#[derive(Default)]
pub struct TokenCache {
    verified: Mutex<HashSet<Entry>>,
}

impl TokenCache {
    /// Whether `signature` is `owner`'s valid signature over `token`: remembered, or checked
    /// now (and remembered if valid).
    pub fn valid(
        &self,
        owner: &Ed25519Pub,
        token: &SubaccountToken,
        signature: &Signature,
    ) -> bool {
        let entry = (*owner.as_bytes(), *token.as_bytes(), signature.to_bytes());
        if self.set().contains(&entry) {
            return true;
        }
        if !token.verify(owner, signature) {
            return false;
        }
        let mut set = self.set();
        if set.len() >= MAX_VERIFIED_TOKENS {
            set.clear();
        }
        set.insert(entry);
        true
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<Entry>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shallot_proto::Identity;

    #[test]
    fn only_valid_signatures_are_remembered_and_each_is_tied_to_its_owner_and_token() {
        let owner = Identity::generate(&mut rand::rngs::OsRng);
        let other = Identity::generate(&mut rand::rngs::OsRng);
        let token = SubaccountToken::from_bytes(&[3; 36]).unwrap();
        let good = owner.sign(token.as_bytes());
        let cache = TokenCache::default();
        let key = owner.ed25519_public();
        assert!(cache.valid(&key, &token, &good));
        assert!(cache.valid(&key, &token, &good), "remembered");
        assert!(!cache.valid(&other.ed25519_public(), &token, &good));
        let forged = other.sign(token.as_bytes());
        assert!(!cache.valid(&key, &token, &forged));
        assert!(
            !cache.valid(&key, &token, &forged),
            "a failure is never remembered"
        );
        let another = SubaccountToken::from_bytes(&[4; 36]).unwrap();
        assert!(!cache.valid(&key, &another, &good));
    }
}
