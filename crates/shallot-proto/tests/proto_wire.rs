//! Pins the protobuf wire bytes: every message, populated in every field, encodes to the bytes the
//! hand-declared prost types produced before the types were generated from `proto/*.proto`, and
//! decodes back to itself.

use prost::Message;
use shallot_proto::attachment::pointer::{Preview, Quote, QuotedAttachment};
use shallot_proto::attachment::AttachmentPointer;
use shallot_proto::group::update::{
    GroupUpdateDeleteMemberContentMessage, GroupUpdateInfoChangeMessage, GroupUpdateInviteMessage,
    GroupUpdateInviteResponseMessage, GroupUpdateMemberChangeMessage, GroupUpdateMemberLeftMessage,
    GroupUpdateMemberLeftNotificationMessage, GroupUpdateMessage, GroupUpdatePromoteMessage,
    InfoChangeType, MemberChangeType,
};
use shallot_proto::session::protos::{
    Content, DataExtractionNotification, DataExtractionType, DataMessage, Envelope, EnvelopeType,
    ExpirationType, MessageRequestResponse, OpenGroupInvitation, Profile, Reaction, ReactionAction,
    ReceiptMessage, ReceiptType, TypingAction, TypingMessage, UnsendRequest, WebSocketMessage,
    WebSocketMessageType, WebSocketRequestMessage,
};

/// Encodes `message`, checks the hex, and checks it decodes back unchanged.
fn pin<M: Message + Default + PartialEq + std::fmt::Debug>(message: &M, expected: &str) {
    let bytes = message.encode_to_vec();
    assert_eq!(hex::encode(&bytes), expected, "{message:?}");
    assert_eq!(&M::decode(bytes.as_slice()).expect("decodes"), message);
}

fn pointer(n: u8) -> AttachmentPointer {
    AttachmentPointer {
        deprecated_id: Some(0x0102_0304_0506_0708 + u64::from(n)),
        content_type: Some("image/png".into()),
        key: Some(vec![n; 32]),
        size: Some(300_000),
        thumbnail: Some(vec![0xee, n]),
        digest: Some(vec![0xdd; 32]),
        file_name: Some("cat.png".into()),
        flags: Some(AttachmentPointer::FLAG_VOICE_MESSAGE),
        width: Some(640),
        height: Some(480),
        caption: Some("a cat".into()),
        url: Some(format!("http://files.example/file/{n}#d")),
    }
}

fn profile() -> Profile {
    Profile {
        display_name: Some("Alice".into()),
        profile_picture: Some("http://files.example/file/9".into()),
        last_profile_update_seconds: Some(1_700_000_000),
    }
}

fn group_update() -> GroupUpdateMessage {
    GroupUpdateMessage {
        invite_message: Some(GroupUpdateInviteMessage {
            group_session_id: Some(format!("03{}", "ab".repeat(32))),
            name: Some("Tomato sauce".into()),
            member_auth_data: Some(vec![7; 100]),
            admin_signature: Some(vec![8; 64]),
        }),
        info_change_message: Some(GroupUpdateInfoChangeMessage {
            kind: Some(InfoChangeType::DisappearingMessages.into()),
            updated_name: Some("Pesto".into()),
            updated_expiration: Some(86_400),
            admin_signature: Some(vec![9; 64]),
        }),
        member_change_message: Some(GroupUpdateMemberChangeMessage {
            kind: Some(MemberChangeType::Promoted.into()),
            member_session_ids: vec![format!("05{}", "11".repeat(32)), String::new()],
            history_shared: Some(true),
            admin_signature: Some(vec![10; 64]),
        }),
        promote_message: Some(GroupUpdatePromoteMessage {
            group_identity_seed: Some(vec![11; 32]),
            name: Some("Tomato sauce".into()),
        }),
        member_left_message: Some(GroupUpdateMemberLeftMessage {}),
        invite_response: Some(GroupUpdateInviteResponseMessage {
            is_approved: Some(true),
        }),
        delete_member_content: Some(GroupUpdateDeleteMemberContentMessage {
            member_session_ids: vec![format!("05{}", "22".repeat(32))],
            message_hashes: vec!["hashA".into(), "hashB".into()],
            admin_signature: Some(vec![12; 64]),
        }),
        member_left_notification_message: Some(GroupUpdateMemberLeftNotificationMessage {}),
    }
}

#[test]
fn websocket_message_bytes_are_pinned() {
    pin(
        &WebSocketMessage {
            kind: Some(WebSocketMessageType::Request.into()),
            request: Some(WebSocketRequestMessage {
                verb: Some("PUT".into()),
                path: Some("/api/v1/message".into()),
                body: Some(vec![1, 2, 3]),
                headers: vec!["a: b".into(), String::new()],
                request_id: Some(u64::MAX),
            }),
        },
        WEBSOCKET,
    );
    // Proto2 presence: explicit zero values are encoded, absent ones are not.
    pin(
        &WebSocketMessage {
            kind: Some(WebSocketMessageType::Unknown.into()),
            request: Some(WebSocketRequestMessage {
                request_id: Some(0),
                ..WebSocketRequestMessage::default()
            }),
        },
        "080012022000",
    );
    pin(&WebSocketMessage::default(), "");
}

#[test]
fn envelope_bytes_are_pinned() {
    pin(
        &Envelope {
            kind: Some(EnvelopeType::ClosedGroupMessage.into()),
            source: Some(String::new()),
            source_device: Some(1),
            timestamp: Some(1_700_000_000_123),
            content: Some(vec![0xca, 0xfe]),
            server_timestamp: Some(1_700_000_000_456),
        },
        ENVELOPE,
    );
}

#[test]
fn content_bytes_are_pinned() {
    let data = DataMessage {
        body: Some("hello ✓".into()),
        attachments: vec![pointer(1), pointer(2)],
        flags: Some(DataMessage::FLAG_EXPIRATION_TIMER_UPDATE),
        expire_timer: Some(3600),
        profile_key: Some(vec![5; 32]),
        timestamp: Some(1_700_000_000_000),
        quote: Some(Quote {
            id: Some(1_699_999_999_999),
            author: Some(format!("05{}", "33".repeat(32))),
            text: Some("quoted".into()),
            attachments: vec![QuotedAttachment {
                content_type: Some("image/jpeg".into()),
                file_name: Some("q.jpg".into()),
                thumbnail: Some(pointer(3)),
                flags: Some(0),
            }],
        }),
        preview: vec![Preview {
            url: Some("https://getsession.org".into()),
            title: Some("Session".into()),
            image: Some(pointer(4)),
        }],
        profile: Some(profile()),
        sync_target: Some(format!("05{}", "44".repeat(32))),
        blocks_community_message_requests: Some(false),
        group_update_message: Some(group_update()),
        ..DataMessage::default()
    };
    pin(&data, DATA_MESSAGE);
    pin(
        &Content {
            data_message: Some(data),
            receipt_message: Some(ReceiptMessage {
                kind: Some(ReceiptType::Read.into()),
                timestamps: vec![1, 0, u64::MAX],
            }),
            typing_message: Some(TypingMessage {
                timestamp: Some(1_700_000_000_001),
                action: Some(TypingAction::Stopped.into()),
            }),
            data_extraction_notification: Some(DataExtractionNotification {
                kind: Some(DataExtractionType::MediaSaved.into()),
                timestamp: Some(1_700_000_000_002),
            }),
            unsend_request: Some(UnsendRequest {
                timestamp: Some(1_700_000_000_003),
                author: Some(format!("05{}", "55".repeat(32))),
            }),
            message_request_response: Some(MessageRequestResponse {
                is_approved: Some(true),
                profile_key: Some(vec![6; 32]),
                profile: Some(profile()),
            }),
            expiration_type: Some(ExpirationType::DeleteAfterSend.into()),
            expiration_timer: Some(86_400),
            sig_timestamp: Some(1_700_000_000_000),
        },
        CONTENT,
    );
}

#[test]
fn typing_start_and_empty_messages_are_pinned() {
    // Zero-valued enums and timestamps are still encoded when present (proto2).
    pin(
        &TypingMessage {
            timestamp: Some(0),
            action: Some(TypingAction::Started.into()),
        },
        "08001000",
    );
    pin(&Content::default(), "");
    pin(&GroupUpdateMessage::default(), "");
}

#[test]
fn group_update_bytes_are_pinned() {
    pin(&group_update(), GROUP_UPDATE);
}

#[test]
fn attachment_pointer_bytes_are_pinned() {
    pin(&pointer(0), POINTER);
    // `deprecated_id` is fixed64: eight bytes even for 0.
    pin(
        &AttachmentPointer {
            deprecated_id: Some(0),
            ..AttachmentPointer::default()
        },
        "090000000000000000",
    );
}

/// Messages added with the .proto (no hand-declared predecessor): bytes worked out by hand from
/// the reference field numbers (`DataMessage.reaction` 11, `openGroupInvitation` 102 with `url` 1
/// and `name` 3, `ReceiptMessage.Type.DELIVERY` 0).
#[test]
fn messages_added_with_the_proto_follow_the_reference_numbers() {
    pin(
        &DataMessage {
            reaction: Some(Reaction {
                id: Some(1),
                author: Some("05".into()),
                emoji: Some("x".into()),
                action: Some(ReactionAction::Remove.into()),
            }),
            ..DataMessage::default()
        },
        "5a0b0801120230351a01782001",
    );
    pin(
        &DataMessage {
            open_group_invitation: Some(OpenGroupInvitation {
                url: Some("u".into()),
                name: Some("n".into()),
            }),
            ..DataMessage::default()
        },
        "b206060a01751a016e",
    );
    let delivery = Content {
        receipt_message: Some(ReceiptMessage {
            kind: Some(ReceiptType::Delivery.into()),
            timestamps: vec![1],
        }),
        ..Content::default()
    };
    pin(&delivery, "2a0408001001");
    // READ stays the default of an absent receipt type, as before DELIVERY was declared.
    assert_eq!(ReceiptMessage::default().kind(), ReceiptType::Read);
    assert_eq!(
        delivery.receipt_message.map(|r| r.kind()),
        Some(ReceiptType::Delivery)
    );
    assert_eq!(Reaction::default().action(), ReactionAction::React);
}

const WEBSOCKET: &str = "0801122e0a03505554120f2f6170692f76312f6d6573736167651a0301020320ffffffffffffffffff012a04613a20622a00";
const ENVELOPE: &str = "0807120028fbd095ffbc3138014202cafe50c8d395ffbc31";
const DATA_MESSAGE: &str = "0a0968656c6c6f20e29c931298010909070605040302011209696d6167652f706e671a20010101010101010101010101010101010101010101010101010101010101010120e0a7122a02ee013220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f312364129801090a070605040302011209696d6167652f706e671a20020202020202020202020202020202020202020202020202020202020202020220e0a7122a02ee023220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f322364200228901c322005050505050505050505050505050505050505050505050505050505050505053880d095ffbc3142860208ffcf95ffbc3112423035333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333331a0671756f74656422b0010a0a696d6167652f6a7065671205712e6a70671a9801090b070605040302011209696d6167652f706e671a20030303030303030303030303030303030303030303030303030303030303030320e0a7122a02ee033220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f332364200052bc010a1668747470733a2f2f67657473657373696f6e2e6f7267120753657373696f6e1a9801090c070605040302011209696d6167652f706e671a20040404040404040404040404040404040404040404040404040404040404040420e0a7122a02ee043220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f342364aa062a0a05416c696365121b687474703a2f2f66696c65732e6578616d706c652f66696c652f391880e2cfaa06ca0642303534343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434d00600c207ae050afa010a42303361626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162120c546f6d61746f2073617563651a6407070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707224008080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808124f08031205506573746f1880a3052240090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909091a8c01080312423035313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131311200180122400a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a22300a200b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b120c546f6d61746f2073617563652a00320208013a94010a4230353232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323212056861736841120568617368421a400c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c4200";
const CONTENT: &str = "0ade0c0a0968656c6c6f20e29c931298010909070605040302011209696d6167652f706e671a20010101010101010101010101010101010101010101010101010101010101010120e0a7122a02ee013220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f312364129801090a070605040302011209696d6167652f706e671a20020202020202020202020202020202020202020202020202020202020202020220e0a7122a02ee023220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f322364200228901c322005050505050505050505050505050505050505050505050505050505050505053880d095ffbc3142860208ffcf95ffbc3112423035333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333331a0671756f74656422b0010a0a696d6167652f6a7065671205712e6a70671a9801090b070605040302011209696d6167652f706e671a20030303030303030303030303030303030303030303030303030303030303030320e0a7122a02ee033220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f332364200052bc010a1668747470733a2f2f67657473657373696f6e2e6f7267120753657373696f6e1a9801090c070605040302011209696d6167652f706e671a20040404040404040404040404040404040404040404040404040404040404040420e0a7122a02ee043220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f342364aa062a0a05416c696365121b687474703a2f2f66696c65732e6578616d706c652f66696c652f391880e2cfaa06ca0642303534343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434d00600c207ae050afa010a42303361626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162120c546f6d61746f2073617563651a6407070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707224008080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808124f08031205506573746f1880a3052240090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909091a8c01080312423035313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131311200180122400a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a22300a200b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b120c546f6d61746f2073617563652a00320208013a94010a4230353232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323212056861736841120568617368421a400c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c42002a1108011001100010ffffffffffffffffff0132090881d095ffbc311001420908021082d095ffbc314a4b0883d095ffbc31124230353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353552500801122006060606060606060606060606060606060606060606060606060606060606061a2a0a05416c696365121b687474703a2f2f66696c65732e6578616d706c652f66696c652f391880e2cfaa0660026880a3057880d095ffbc31";
const GROUP_UPDATE: &str = "0afa010a42303361626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162120c546f6d61746f2073617563651a6407070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707224008080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808080808124f08031205506573746f1880a3052240090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909091a8c01080312423035313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131311200180122400a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a22300a200b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b120c546f6d61746f2073617563652a00320208013a94010a4230353232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323212056861736841120568617368421a400c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c4200";
const POINTER: &str = "0908070605040302011209696d6167652f706e671a20000000000000000000000000000000000000000000000000000000000000000020e0a7122a02ee003220dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd3a076361742e706e67400148800550e0035a056120636174aa061d687474703a2f2f66696c65732e6578616d706c652f66696c652f302364";
