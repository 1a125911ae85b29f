//! Recovery phrase properties: every seed round-trips; mangled phrases fail cleanly.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

use proptest::prelude::*;
use shallot_proto::mnemonic;

proptest! {
    #[test]
    fn any_seed_round_trips(seed in any::<[u8; 16]>()) {
        let phrase = mnemonic::encode(&seed);
        prop_assert_eq!(phrase.split(' ').count(), 13);
        prop_assert_eq!(*mnemonic::decode(&phrase).unwrap(), seed);
        // Three-letter abbreviations decode to the same seed.
        let short: Vec<&str> = phrase.split(' ').map(|w| &w[..3]).collect();
        prop_assert_eq!(*mnemonic::decode(&short.join(" ")).unwrap(), seed);
    }

    #[test]
    fn a_wrong_checksum_word_is_always_caught(seed in any::<[u8; 16]>(), replacement in "[a-z]{3}") {
        let phrase = mnemonic::encode(&seed);
        let mut words: Vec<&str> = phrase.split(' ').collect();
        prop_assume!(words[12][..3] != replacement);
        words[12] = &replacement;
        let result = mnemonic::decode(&words.join(" "));
        let caught = matches!(
            result,
            Err(mnemonic::MnemonicError::BadChecksum
                | mnemonic::MnemonicError::UnknownWord { position: 13, .. })
        );
        prop_assert!(caught, "wrong checksum word accepted: {:?}", result);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = mnemonic::decode(&text);
    }

    #[test]
    fn truncated_phrases_are_rejected(seed in any::<[u8; 16]>(), keep in 0usize..13) {
        let phrase = mnemonic::encode(&seed);
        let words: Vec<&str> = phrase.split(' ').take(keep).collect();
        prop_assert_eq!(
            mnemonic::decode(&words.join(" ")),
            Err(mnemonic::MnemonicError::WrongLength(keep))
        );
    }
}
