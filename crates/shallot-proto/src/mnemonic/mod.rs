//! The recovery phrase (onion-client spec §6): a 16-byte seed as 12 words plus a checksum word,
//! from the 1626-word English list Session uses. Words match by their unique 3-letter prefix.

use std::collections::HashMap;
use std::sync::OnceLock;

use zeroize::Zeroizing;

/// Words in the English list.
const LIST_LEN: u32 = 1626;
/// Characters that identify a word uniquely in the English list.
const PREFIX_LEN: usize = 3;
/// Words for a 16-byte seed: 12 data words and one checksum word.
pub const PHRASE_WORDS: usize = 13;

const ENGLISH: &str = include_str!("english.txt");

/// Why a recovery phrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnemonicError {
    /// The phrase does not have 13 words.
    #[error("a recovery phrase has {PHRASE_WORDS} words; this one has {0}")]
    WrongLength(usize),
    /// A word is not in the list (matched by its first three letters).
    #[error("word {position} ({word:?}) is not in the recovery-phrase word list")]
    UnknownWord {
        /// 1-based position in the phrase.
        position: usize,
        /// The word as given.
        word: String,
    },
    /// A group of three words does not encode a 32-bit value.
    #[error("words {first}-{} do not form a valid group; check their spelling and order", first + 2)]
    InvalidGroup {
        /// 1-based position of the group's first word.
        first: usize,
    },
    /// The last word does not match the checksum of the others.
    #[error("the checksum word does not match; a word is probably wrong or out of order")]
    BadChecksum,
}

struct WordList {
    words: Vec<&'static str>,
    by_prefix: HashMap<&'static str, u32>,
}

fn word_list() -> &'static WordList {
    static LIST: OnceLock<WordList> = OnceLock::new();
    LIST.get_or_init(|| {
        let words: Vec<&'static str> = ENGLISH.lines().map(str::trim).collect();
        debug_assert_eq!(words.len(), LIST_LEN as usize);
        let by_prefix = words
            .iter()
            .zip(0u32..)
            .map(|(word, index)| (prefix(word), index))
            .collect();
        WordList { words, by_prefix }
    })
}

/// The first three characters (all list words and prefixes are ASCII).
fn prefix(word: &str) -> &str {
    word.get(..PREFIX_LEN).unwrap_or(word)
}

fn checksum_index(words: &[&str]) -> usize {
    let mut crc = crc32fast::Hasher::new();
    for word in words {
        crc.update(prefix(word).as_bytes());
    }
    // Lossless: u32 always fits in usize on supported targets.
    crc.finalize() as usize % words.len()
}

/// Encodes a 16-byte seed as a 13-word phrase (space separated, lowercase).
pub fn encode(seed: &[u8; 16]) -> Zeroizing<String> {
    let list = word_list();
    let mut indices = Vec::with_capacity(PHRASE_WORDS);
    for chunk in seed.chunks_exact(4) {
        let x = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let w1 = x % LIST_LEN;
        let w2 = (x / LIST_LEN + w1) % LIST_LEN;
        let w3 = (x / LIST_LEN / LIST_LEN + w2) % LIST_LEN;
        indices.extend([w1, w2, w3]);
    }
    let mut words: Vec<&str> = indices.iter().map(|&i| list.words[i as usize]).collect();
    words.push(words[checksum_index(&words)]);
    Zeroizing::new(words.join(" "))
}

/// Decodes a 13-word phrase to its 16-byte seed. Case and extra whitespace are ignored, and each
/// word may be abbreviated to (or misspelt after) its first three letters, as in Session.
pub fn decode(phrase: &str) -> Result<Zeroizing<[u8; 16]>, MnemonicError> {
    let list = word_list();
    let given: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
    let given = Zeroizing::new(given);
    if given.len() != PHRASE_WORDS {
        return Err(MnemonicError::WrongLength(given.len()));
    }
    let mut indices = Zeroizing::new([0u32; PHRASE_WORDS]);
    for (position, word) in given.iter().enumerate() {
        indices[position] = word
            .get(..PREFIX_LEN)
            .and_then(|p| list.by_prefix.get(p))
            .copied()
            .ok_or_else(|| MnemonicError::UnknownWord {
                position: position + 1,
                word: word.clone(),
            })?;
    }

    let n = u64::from(LIST_LEN);
    let mut seed = Zeroizing::new([0u8; 16]);
    for (group, chunk) in indices[..PHRASE_WORDS - 1].chunks_exact(3).enumerate() {
        let (w1, w2, w3) = (
            u64::from(chunk[0]),
            u64::from(chunk[1]),
            u64::from(chunk[2]),
        );
        let x = w1 + n * ((n - w1 + w2) % n) + n * n * ((n - w2 + w3) % n);
        let x = u32::try_from(x)
            .ok()
            .filter(|&x| u64::from(x) % n == w1)
            .ok_or(MnemonicError::InvalidGroup {
                first: group * 3 + 1,
            })?;
        seed[group * 4..group * 4 + 4].copy_from_slice(&x.to_le_bytes());
    }

    let data_words: Vec<&str> = indices[..PHRASE_WORDS - 1]
        .iter()
        .map(|&i| list.words[i as usize])
        .collect();
    let expected = data_words[checksum_index(&data_words)];
    if prefix(expected) != prefix(list.words[indices[PHRASE_WORDS - 1] as usize]) {
        return Err(MnemonicError::BadChecksum);
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_list_has_unique_three_letter_prefixes() {
        let list = word_list();
        assert_eq!(list.words.len(), 1626);
        assert_eq!(list.by_prefix.len(), 1626);
        assert_eq!(list.words[0], "abbey");
        assert_eq!(list.words[1625], "zoom");
    }

    #[test]
    fn spec_note_on_first_chunk_indices() {
        // Spec §6: the 4-byte input 01020304 gives indices 967/84/109 ("object anxiety asked").
        let mut seed = [0u8; 16];
        seed[..4].copy_from_slice(&[1, 2, 3, 4]);
        let phrase = encode(&seed);
        assert!(phrase.starts_with("object anxiety asked "), "{}", *phrase);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(decode("abbey abbey"), Err(MnemonicError::WrongLength(2)));
        let err =
            decode("ab abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey");
        assert!(matches!(
            err,
            Err(MnemonicError::UnknownWord { position: 1, .. })
        ));
    }
}
