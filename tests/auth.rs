//! Access tokens: what is accepted (our algorithm, signature, issuer, unexpired, a role
//! high enough) and every way a token is refused, for HS256, RS256 and EdDSA.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use neuroflow::auth::{AuthError, Claims, Role, TokenIssuer};

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";
const HOUR: Duration = Duration::from_secs(3600);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(exp: u64, iss: &str) -> Claims {
    Claims {
        sub: "ada".into(),
        role: Role::Admin,
        iss: iss.into(),
        iat: now(),
        exp,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn an_issued_token_authorizes_its_role_and_those_below() {
    let issuer = TokenIssuer::hs256(SECRET, HOUR).unwrap();
    let token = issuer.issue("op", Role::Operator).unwrap();
    assert!(token.expires_at >= now() + 3590);
    let header = bearer(&token.token);
    let claims = issuer.authorize(Some(&header), Role::Viewer).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), ("op", Role::Operator));
    assert!(issuer.authorize(Some(&header), Role::Operator).is_ok());
    let err = issuer.authorize(Some(&header), Role::Admin).unwrap_err();
    assert_eq!(
        err,
        AuthError::Forbidden {
            required: "admin",
            have: "operator"
        }
    );
    assert_eq!(err.status(), 403);
}

#[test]
fn missing_expired_tampered_and_foreign_tokens_are_refused_with_401() {
    let issuer = TokenIssuer::hs256(SECRET, HOUR).unwrap();
    let refused = |header: Option<&str>| {
        let err = issuer.authorize(header, Role::Viewer).unwrap_err();
        assert_eq!(err.status(), 401, "{err}");
        err
    };
    assert_eq!(refused(None), AuthError::Missing);
    assert_eq!(refused(Some("Basic YWRhOnB3")), AuthError::Missing);
    assert_eq!(refused(Some("Bearer ")), AuthError::Missing);

    let key = EncodingKey::from_secret(SECRET);
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() - 120, "neuroflow"),
        &key,
    )
    .unwrap();
    assert_eq!(refused(Some(&bearer(&expired))), AuthError::Expired);

    let foreign = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() + 600, "elsewhere"),
        &key,
    )
    .unwrap();
    assert!(matches!(
        refused(Some(&bearer(&foreign))),
        AuthError::Invalid(_)
    ));

    // A payload changed after signing (admin claims grafted on a viewer's token).
    let viewer = issuer.issue("v", Role::Viewer).unwrap().token;
    let admin = issuer.issue("v", Role::Admin).unwrap().token;
    let parts: Vec<&str> = viewer.split('.').collect();
    let admin_payload = admin.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], admin_payload, parts[2]);
    assert!(matches!(
        refused(Some(&bearer(&tampered))),
        AuthError::Invalid(_)
    ));

    // Signed with another secret.
    let other = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() + 600, "neuroflow"),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
    )
    .unwrap();
    assert!(matches!(
        refused(Some(&bearer(&other))),
        AuthError::Invalid(_)
    ));
    assert!(matches!(
        refused(Some("Bearer not-a-jwt")),
        AuthError::Invalid(_)
    ));
}

#[test]
fn unsigned_and_other_algorithm_tokens_are_refused() {
    let issuer = TokenIssuer::hs256(SECRET, HOUR).unwrap();
    // `alg: none`, no signature.
    let payload = base64_url(
        serde_json::to_string(&claims(now() + 600, "neuroflow"))
            .unwrap()
            .as_bytes(),
    );
    let none = format!(
        "{}.{payload}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let err = issuer
        .authorize(Some(&bearer(&none)), Role::Viewer)
        .unwrap_err();
    assert_eq!(err.status(), 401, "{err}");

    // The same secret, another HMAC.
    let hs384 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &claims(now() + 600, "neuroflow"),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert!(matches!(
        issuer.verify(&hs384),
        Err(AuthError::WrongAlgorithm { .. })
    ));

    // Key confusion: an RS256 node must not take an HS256 token keyed with its public key.
    let public = fixture("rsa-public.pem");
    let rs = TokenIssuer::rs256(&fixture("rsa-private.pem"), &public, HOUR).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() + 600, "neuroflow"),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert!(matches!(
        rs.verify(&confused),
        Err(AuthError::WrongAlgorithm { .. })
    ));
}

#[test]
fn rs256_and_eddsa_key_pairs_issue_and_verify() {
    let rs = TokenIssuer::rs256(
        &fixture("rsa-private.pem"),
        &fixture("rsa-public.pem"),
        HOUR,
    )
    .unwrap();
    let token = rs.issue("ada", Role::Viewer).unwrap();
    assert_eq!(rs.verify(&token.token).unwrap().sub, "ada");
    let ed = TokenIssuer::eddsa(
        &fixture("ed25519-private.pem"),
        &fixture("ed25519-public.pem"),
        HOUR,
    )
    .unwrap();
    let token = ed.issue("ada", Role::Admin).unwrap();
    assert_eq!(ed.verify(&token.token).unwrap().role, Role::Admin);
    // Each refuses the other's tokens.
    assert!(rs.verify(&token.token).is_err());
}

#[test]
fn weak_secrets_and_bad_keys_are_refused() {
    assert!(matches!(
        TokenIssuer::hs256(b"short", HOUR),
        Err(AuthError::Key(_))
    ));
    assert!(matches!(
        TokenIssuer::rs256(b"not a pem", b"not a pem", HOUR),
        Err(AuthError::Key(_))
    ));
}

/// Base64url without padding (RFC 7515), for hand-made tokens.
fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
