//! Attachment references from untrusted messages: the bytes as an `AttachmentPointer` and as a
//! `DataMessage` (attachments, quote, previews), and as a file URL and profile-picture reference.
//! Nothing may panic; decoded protobufs re-encode to an equal value; a URL that parses prints
//! as a URL that parses to the same value; a resolved pointer's key fits its scheme.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use shallot_proto::attachment::pointer::resolve_profile_picture;
use shallot_proto::attachment::{AttachmentPointer, Decryption, FileUrl};
use shallot_proto::session::protos::DataMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(pointer) = AttachmentPointer::decode(data) {
        let again = AttachmentPointer::decode(pointer.encode_to_vec().as_slice()).unwrap();
        assert_eq!(again, pointer);
        if let Ok(resolved) = pointer.resolve() {
            assert_eq!(resolved.url.stream, matches!(resolved.decryption, Decryption::Stream { .. }));
            let _ = resolved.decryption.decryptor();
        }
    }
    if let Ok(message) = DataMessage::decode(data) {
        let again = DataMessage::decode(message.encode_to_vec().as_slice()).unwrap();
        assert_eq!(again, message);
        for pointer in message.attachments.iter().chain(message.preview.iter().filter_map(|p| p.image.as_ref())) {
            let _ = pointer.resolve();
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(url) = text.parse::<FileUrl>() {
        let printed = url.to_string();
        assert_eq!(printed.parse::<FileUrl>().as_ref(), Ok(&url), "{printed}");
        assert!(url.download_endpoint().starts_with("/file/"));
    }
    let split = data.len().min(usize::from(data.first().copied().unwrap_or(0)));
    let (key, url) = data.split_at(split);
    let _ = resolve_profile_picture(&String::from_utf8_lossy(url), key);
});
