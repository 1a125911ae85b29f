//! Signed request and response messages (storage RPC spec §2.5–§2.8): exact bytes and the
//! verification algorithm's accept/reject paths.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

use shallot_proto::message_hash::{MessageHash, RequestedHash};
use shallot_proto::namespace::NamespaceSelector;
use shallot_proto::signing::{
    AuthError, ExpireMode, RequestAuth, SignedRequest, SignedResponse, SignedSubaccount,
};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, AccountKind, Identity, Namespace};

const H1: &str = "IMR0YySXQK/E+Zreo7uKqLcyqiJbwIB8V3U9Keu/uXU";
const H2: &str = "RJlZiZe5q0xuUckjsOt7wE9rz68G+RRRz55Nb2T1PXk";
const H3: &str = "33a5v2C7IBdUdmNJWdUK/ZPtMtLxm6JVy8zjXKnWros";

fn hashes() -> Vec<MessageHash> {
    [H1, H2, H3].iter().map(|h| h.parse().unwrap()).collect()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn request_messages_are_exact() {
    let hs = hashes();
    let rs: Vec<RequestedHash> = hs.iter().copied().map(RequestedHash::from).collect();
    let cases: Vec<(SignedRequest<'_>, String)> = vec![
        (
            SignedRequest::Retrieve {
                namespace: Namespace(0),
                timestamp: 1_700_000_000_123,
            },
            "retrieve1700000000123".into(),
        ),
        (
            SignedRequest::Retrieve {
                namespace: Namespace(-10),
                timestamp: 1_700_000_000_123,
            },
            "retrieve-101700000000123".into(),
        ),
        (
            SignedRequest::Store {
                namespace: Namespace(3),
                sig_timestamp: 1_700_000_000_000,
            },
            "store31700000000000".into(),
        ),
        (
            SignedRequest::Delete { messages: &rs[..2] },
            format!("delete{H1}{H2}"),
        ),
        (
            SignedRequest::DeleteAll {
                namespaces: NamespaceSelector::All,
                timestamp: 5,
            },
            "delete_allall5".into(),
        ),
        (
            SignedRequest::DeleteAll {
                namespaces: NamespaceSelector::One(Namespace(0)),
                timestamp: 5,
            },
            "delete_all5".into(),
        ),
        (
            SignedRequest::DeleteBefore {
                namespaces: NamespaceSelector::One(Namespace(42)),
                before: 9,
            },
            "delete_before429".into(),
        ),
        (
            SignedRequest::ExpireAll {
                namespaces: NamespaceSelector::All,
                expiry: 77,
            },
            "expire_allall77".into(),
        ),
        (
            SignedRequest::Expire {
                mode: ExpireMode::Shorten,
                expiries: &[100],
                messages: &rs[..1],
            },
            format!("expireshorten100{H1}"),
        ),
        (
            SignedRequest::Expire {
                mode: ExpireMode::Set,
                expiries: &[100, 200],
                messages: &rs[..2],
            },
            format!("expire100200{H1}{H2}"),
        ),
        (
            SignedRequest::GetExpiries {
                timestamp: 12,
                messages: &["x", "y"],
            },
            "get_expiries12xy".into(),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(text(request.message()), expected, "{request:?}");
    }

    let account: AccountId = format!("05{}", "ab".repeat(32)).parse().unwrap();
    let monitor = SignedRequest::Monitor {
        account: &account,
        timestamp_s: 1_700_000_000,
        want_data: true,
        namespaces: &[Namespace(-10), Namespace(0), Namespace(2)],
    };
    assert_eq!(
        text(monitor.message()),
        format!("MONITOR05{}17000000001-10,0,2", "ab".repeat(32))
    );

    let token = SubaccountToken::new(
        3,
        SubaccountFlags::READ,
        &Identity::from_seed([1; 32]).ed25519_public(),
    );
    let revoke = SignedRequest::RevokeSubaccount {
        timestamp: 8,
        tokens: &[token],
    };
    let mut expected = b"revoke_subaccount8".to_vec();
    expected.extend_from_slice(token.as_bytes());
    assert_eq!(revoke.message(), expected);
}

#[test]
fn response_messages_sort_hashes_by_text() {
    let account: AccountId = format!("03{}", "cd".repeat(32)).parse().unwrap();
    let hex = account.to_hex();
    let hs = hashes();
    let rs: Vec<RequestedHash> = hs.iter().copied().map(RequestedHash::from).collect();
    // ASCII order of the texts: "33a…" < "IMR…" < "RJl…" (digits sort before capitals).
    let deleted = [hs[1], hs[0], hs[2]];
    let delete = SignedResponse::Delete {
        account: &account,
        requested: &[rs[1].clone(), rs[0].clone()],
        deleted: &deleted,
    };
    assert_eq!(text(delete.message()), format!("{hex}{H2}{H1}{H3}{H1}{H2}"));

    let all = SignedResponse::DeleteAll {
        account: &account,
        timestamp: 123,
        deleted: &deleted,
    };
    assert_eq!(text(all.message()), format!("{hex}123{H3}{H1}{H2}"));

    let store = SignedResponse::Store { hash: &hs[0] };
    assert_eq!(text(store.message()), H1);

    let expire = SignedResponse::Expire {
        account: &account,
        single_expiry: None,
        requested: &rs[..3],
        updated: &[(hs[1], 20), (hs[2], 30)],
        unchanged: &[(hs[0], 10)],
    };
    // EXP' = applied expiries of updated in hash-sorted order: H3 (30) then H2 (20).
    assert_eq!(
        text(expire.message()),
        format!("{hex}3020{H1}{H2}{H3}{H3}{H2}{H1}10")
    );

    let single = SignedResponse::Expire {
        account: &account,
        single_expiry: Some(99),
        requested: &rs[..1],
        updated: &[(hs[0], 99)],
        unchanged: &[],
    };
    assert_eq!(text(single.message()), format!("{hex}99{H1}{H1}"));
}

fn session_account(id: &Identity) -> AccountId {
    id.session_id().into()
}

#[test]
fn session_account_auth_needs_matching_ed25519_key() {
    let user = Identity::from_seed([5; 32]);
    let other = Identity::from_seed([6; 32]);
    let account = session_account(&user);
    let message = SignedRequest::Retrieve {
        namespace: Namespace(0),
        timestamp: 1,
    }
    .message();
    let signature = user.sign(&message);
    let ed = user.ed25519_public();

    let auth = RequestAuth {
        account: &account,
        pubkey_ed25519: Some(&ed),
        subaccount: None,
        signature: &signature,
    };
    assert_eq!(
        auth.verify(&message, SubaccountFlags::READ, |_| false),
        Ok(())
    );
    // Signed over another message.
    assert_eq!(
        auth.verify(b"retrieve2", SubaccountFlags::READ, |_| false),
        Err(AuthError::BadSignature)
    );
    // Another user's Ed25519 key does not belong to this Session ID.
    let wrong_ed = other.ed25519_public();
    let auth = RequestAuth {
        account: &account,
        pubkey_ed25519: Some(&wrong_ed),
        subaccount: None,
        signature: &signature,
    };
    assert_eq!(
        auth.verify(&message, SubaccountFlags::READ, |_| false),
        Err(AuthError::Ed25519Mismatch)
    );
    // Without pubkey_ed25519 the X25519 bytes are not the signing key.
    let auth = RequestAuth {
        account: &account,
        pubkey_ed25519: None,
        subaccount: None,
        signature: &signature,
    };
    assert_eq!(
        auth.verify(&message, SubaccountFlags::READ, |_| false),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn group_subaccount_auth_paths() {
    let group = Identity::from_seed([3; 32]);
    let member = Identity::from_seed([4; 32]);
    let account = AccountId::new(AccountKind::Group, *group.ed25519_public().as_bytes());
    let message = SignedRequest::Store {
        namespace: Namespace(11),
        sig_timestamp: 10,
    }
    .message();
    let member_sig = member.sign(&message);

    let check = |flags: SubaccountFlags,
                 prefix: u8,
                 owner: &Identity,
                 required: SubaccountFlags,
                 revoked: bool| {
        let token = SubaccountToken::new(prefix, flags, &member.ed25519_public());
        let token_sig = token.sign(owner);
        let auth = RequestAuth {
            account: &account,
            pubkey_ed25519: None,
            subaccount: Some(SignedSubaccount {
                token: &token,
                signature: &token_sig,
            }),
            signature: &member_sig,
        };
        auth.verify(&message, required, |_| revoked)
    };
    let rw = SubaccountFlags::READ | SubaccountFlags::WRITE;
    assert_eq!(
        check(rw, 0x03, &group, SubaccountFlags::WRITE, false),
        Ok(())
    );
    assert_eq!(
        check(rw, 0x03, &group, SubaccountFlags::WRITE, true),
        Err(AuthError::Revoked)
    );
    assert_eq!(
        check(rw, 0x05, &group, SubaccountFlags::WRITE, false),
        Err(AuthError::WrongPrefix)
    );
    assert_eq!(
        check(
            rw | SubaccountFlags::ANY_PREFIX,
            0x05,
            &group,
            SubaccountFlags::WRITE,
            false
        ),
        Ok(())
    );
    assert_eq!(
        check(
            SubaccountFlags::READ,
            0x03,
            &group,
            SubaccountFlags::WRITE,
            false
        ),
        Err(AuthError::MissingPermission)
    );
    assert_eq!(
        check(rw, 0x03, &member, SubaccountFlags::WRITE, false),
        Err(AuthError::BadSubaccountSignature)
    );

    // The group key itself signs directly.
    let direct = group.sign(&message);
    let auth = RequestAuth {
        account: &account,
        pubkey_ed25519: None,
        subaccount: None,
        signature: &direct,
    };
    assert_eq!(
        auth.verify(&message, SubaccountFlags::WRITE, |_| false),
        Ok(())
    );
}
