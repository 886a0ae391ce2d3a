//! Sign-in, tokens, devices, revocation and the audit chain.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use reqwest::StatusCode;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use crate::harness::{diagnostics, json_of, run_cli_env, Backend, Hub, TestDb};

const PASS: &str = "a long passphrase for tests";

/// Creates a PractitionerRole with `role` and an account bound to it.
async fn account(hub: &Hub, username: &str, role: &str) {
    let role_id = format!("role-{}", username.replace('.', "-"));
    let (s, b) = hub
        .put(&format!("PractitionerRole/{role_id}"), &json!({"resourceType": "PractitionerRole", "id": role_id,
            "organization": {"reference": "Organization/org-test"},
            "code": [{"coding": [{"system": "https://careshare.example.org/fhir/CodeSystem/staff-role", "code": role}]}]}))
        .await;
    assert!(s.is_success(), "{b}");
    let (ok, out, err) = run_cli_env(
        &hub.db,
        &[
            "admin",
            "create-user",
            "--username",
            username,
            "--role-id",
            &role_id,
        ],
        &[("CARESHARE_PASSPHRASE", PASS)],
    );
    assert!(ok, "{out}{err}");
}

async fn post_json(
    hub: &Hub,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let base = hub.base.trim_end_matches("/fhir");
    let mut rb = hub.client.post(format!("{base}{path}")).json(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let headers = r.headers().clone();
    let (s, v) = json_of(r).await;
    (s, v, headers)
}

async fn whoami(hub: &Hub, token: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let base = hub.base.trim_end_matches("/fhir");
    let r = hub
        .client
        .get(format!("{base}/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    let (s, v) = json_of(r).await;
    (s, v, headers)
}

async fn sign_in(hub: &Hub, user: &str, pass: &str) -> (StatusCode, Value) {
    let (s, v, _) = post_json(
        hub,
        "/auth/token",
        None,
        &json!({"username": user, "passphrase": pass}),
    )
    .await;
    (s, v)
}

/// Registers a device key and proves it, returning (device id, device token, key pair).
async fn enrol_device(hub: &Hub, user_token: &str) -> (String, String, Ed25519KeyPair) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let (s, b, _) = post_json(
        hub,
        "/auth/devices",
        Some(user_token),
        &json!({"name": "laptop 7", "public_key": B64.encode(key.public_key().as_ref())}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let device = b["device_id"].as_str().unwrap().to_string();
    let (s, c, _) = post_json(
        hub,
        &format!("/auth/devices/{device}/challenge"),
        Some(user_token),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let nonce = c["nonce"].as_str().unwrap();
    let sig = key.sign(format!("careshare-device-proof:{nonce}").as_bytes());
    let (s, t, _) = post_json(
        hub,
        &format!("/auth/devices/{device}/token"),
        Some(user_token),
        &json!({"nonce": nonce, "signature": B64.encode(sig.as_ref())}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    (device, t["access_token"].as_str().unwrap().to_string(), key)
}

async fn identity_flows(backend: Backend) {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("hub.log");
    let db = TestDb::new(backend).await;
    let hub = Hub::start_with(
        db,
        &[
            ("CARESHARE_LOG", "debug"),
            ("CARESHARE_ACCESS_TTL_SECS", "3"),
        ],
        Some(std::fs::File::create(&log_path).unwrap()),
    );
    account(&hub, "nurse.test", "district-nurse").await;
    account(&hub, "other.test", "gp").await;
    account(&hub, "admin.test", "region-admin").await;

    // Sign in, and see who we are.
    let (s, t) = sign_in(&hub, "nurse.test", PASS).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let nurse = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let (s, me, _) = whoami(&hub, &nurse).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "nurse.test");

    // Wrong passphrase and unknown user: the same answer, naming no secret.
    let (s, oo) = sign_in(&hub, "nurse.test", "not the passphrase").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s2, oo2) = sign_in(&hub, "nobody.here", "not the passphrase").await;
    assert_eq!((s2, diagnostics(&oo2)), (s, diagnostics(&oo)));
    assert!(!oo.to_string().contains("not the passphrase"));

    // Forged and missing tokens.
    let (s, oo, _) = whoami(&hub, "Zm9yZ2VkLXRva2Vu").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{oo}");
    assert!(diagnostics(&oo).contains("not valid"));

    // A device proves its key; a signature by another key does not pass.
    let (device, device_token, _key) = enrol_device(&hub, &nurse).await;
    let (s, me, _) = whoami(&hub, &device_token).await;
    assert_eq!(
        (s, me["device_id"].as_str()),
        (StatusCode::OK, Some(device.as_str()))
    );
    let (_, c, _) = post_json(
        &hub,
        &format!("/auth/devices/{device}/challenge"),
        Some(&nurse),
        &json!({}),
    )
    .await;
    let nonce = c["nonce"].as_str().unwrap();
    let other = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let forged = other.sign(format!("careshare-device-proof:{nonce}").as_bytes());
    let (s, oo, _) = post_json(
        &hub,
        &format!("/auth/devices/{device}/token"),
        Some(&nurse),
        &json!({"nonce": nonce, "signature": B64.encode(forged.as_ref())}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{oo}");
    // Another user cannot use the nurse's device.
    let (_, t) = sign_in(&hub, "other.test", PASS).await;
    let other_token = t["access_token"].as_str().unwrap().to_string();
    let (s, _, _) = post_json(
        &hub,
        &format!("/auth/devices/{device}/challenge"),
        Some(&other_token),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Only an administrator revokes.
    let (s, _, _) = post_json(
        &hub,
        &format!("/admin/devices/{device}/revoke"),
        Some(&nurse),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, t) = sign_in(&hub, "admin.test", PASS).await;
    let admin = t["access_token"].as_str().unwrap().to_string();
    let (s, b, _) = post_json(
        &hub,
        &format!("/admin/devices/{device}/revoke"),
        Some(&admin),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The revoked device is told to wipe, not just refused.
    let (s, oo, headers) = whoami(&hub, &device_token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(headers["careshare-instruction"], "wipe");
    assert_eq!(oo["issue"][0]["details"]["coding"][0]["code"], "wipe");

    // Revoking a user ends their tokens and sign-ins at once.
    let (s, _, _) = post_json(
        &hub,
        "/admin/users/other.test/revoke",
        Some(&admin),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(whoami(&hub, &other_token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in(&hub, "other.test", PASS).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Tokens expire; a refresh token gives a new pair once.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (s, oo, _) = whoami(&hub, &nurse).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(diagnostics(&oo).contains("expired"), "{oo}");
    let (s, t, _) = post_json(
        &hub,
        "/auth/refresh",
        None,
        &json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let fresh = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&hub, &fresh).await.0, StatusCode::OK);
    let (s, _, _) = post_json(
        &hub,
        "/auth/refresh",
        None,
        &json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a refresh token is spent on use"
    );
    // Two refreshes with one token at the same moment: one of them gets the new pair.
    let next = t["refresh_token"].as_str().unwrap().to_string();
    let body = json!({"refresh_token": next});
    let (a, b) = tokio::join!(
        post_json(&hub, "/auth/refresh", None, &body),
        post_json(&hub, "/auth/refresh", None, &body)
    );
    let renewed = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(renewed, 1, "{} / {}", a.1, b.1);

    // Repeated failures lock the account; the right passphrase does not open it meanwhile.
    for _ in 0..5 {
        sign_in(&hub, "nurse.test", "still not the passphrase").await;
    }
    let (s, oo) = sign_in(&hub, "nurse.test", PASS).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{oo}");

    // Secrets never reach the log.
    let secrets = [
        PASS,
        "not the passphrase",
        &nurse,
        &refresh,
        &next,
        &device_token,
        &admin,
        &fresh,
    ];
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.len() > 200, "the hub logged at debug level: {log}");
    for s in secrets {
        assert!(!log.contains(s), "a secret reached the log");
    }

    // Every identity event was audited, and the chain verifies.
    let (ok, out, err) = run_cli_env(&hub.db, &["audit", "verify"], &[]);
    assert!(ok, "{out}{err}");
    let (_, list, _) = run_cli_env(
        &hub.db,
        &["audit", "list", "--user", "nurse.test", "--limit", "100"],
        &[],
    );
    let events: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let subtypes: Vec<&str> = events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap())
        .collect();
    for expected in ["sign-in", "device-registration", "device-proof"] {
        assert!(
            subtypes.contains(&expected),
            "{expected} not audited: {subtypes:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["subtype"][0]["code"] == "sign-in" && e["outcome"] == "4"),
        "failed sign-ins are audited"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_on_sqlite() {
    identity_flows(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_on_postgres() {
    identity_flows(Backend::Postgres).await;
}

/// Changing or removing one audit row is detected.
async fn audit_tampering(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hub = Hub::start_on(db);
    for _ in 0..4 {
        sign_in(&hub, "nobody", "wrong passphrase").await;
    }
    let (ok, out, _) = run_cli_env(&hub.db, &["audit", "verify"], &[]);
    // The harness's own sign-in, then the four failed ones.
    assert!(ok && out.contains("5 events"), "{out}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&hub.db.url).await.unwrap();
    sqlx::query(
        "UPDATE audit_log SET content = replace(content, 'nobody', 'somebody') WHERE seq = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (ok, out, err) = run_cli_env(&hub.db, &["audit", "verify"], &[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("audit row 2") && err.contains("changed"),
        "{err}"
    );
    // Put it back, then remove a row instead.
    sqlx::query(
        "UPDATE audit_log SET content = replace(content, 'somebody', 'nobody') WHERE seq = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(run_cli_env(&hub.db, &["audit", "verify"], &[]).0);
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    let (ok, _, err) = run_cli_env(&hub.db, &["audit", "verify"], &[]);
    assert!(!ok);
    assert!(err.contains("removed"), "{err}");
    pool.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_detected_on_sqlite() {
    audit_tampering(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_detected_on_postgres() {
    audit_tampering(Backend::Postgres).await;
}

async fn put_recovery_key(hub: &Hub, device: &str, token: &str, key: &str) -> (StatusCode, Value) {
    let base = hub.base.trim_end_matches("/fhir");
    let r = hub
        .client
        .put(format!("{base}/auth/devices/{device}/recovery-key"))
        .bearer_auth(token)
        .json(&json!({"recovery_key": key}))
        .send()
        .await
        .unwrap();
    json_of(r).await
}

async fn recover(
    hub: &Hub,
    device: &str,
    pass: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    post_json(
        hub,
        &format!("/auth/devices/{device}/recover"),
        None,
        &json!({"passphrase": pass}),
    )
    .await
}

/// A locked device is re-authorised: the hub gives the device's recovery key back to the
/// device's own user, signed in again, and to no one else.
async fn device_recovery(backend: Backend) {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("hub.log");
    let db = TestDb::new(backend).await;
    let hub = Hub::start_with(
        db,
        &[("CARESHARE_LOG", "debug")],
        Some(std::fs::File::create(&log_path).unwrap()),
    );
    account(&hub, "nurse.test", "district-nurse").await;
    account(&hub, "other.test", "gp").await;
    account(&hub, "admin.test", "region-admin").await;
    let (_, t) = sign_in(&hub, "nurse.test", PASS).await;
    let nurse = t["access_token"].as_str().unwrap().to_string();
    let (device, device_token, _key) = enrol_device(&hub, &nurse).await;
    let key = B64.encode([7u8; 32]);

    // Before a key is stored there is nothing to give back.
    let (s, oo, _) = recover(&hub, &device, PASS).await;
    assert_eq!(s, StatusCode::CONFLICT, "{oo}");
    assert!(diagnostics(&oo).contains("enrol it again"), "{oo}");

    // Only a token bound to the device stores its key, and only a 32-byte key.
    let (s, _) = put_recovery_key(&hub, &device, &nurse, &key).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a user token is not the device");
    let (s, oo) = put_recovery_key(&hub, &device, &device_token, "c2hvcnQ").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{oo}");
    let (s, b) = put_recovery_key(&hub, &device, &device_token, &key).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b.to_string().contains(&key), "the key is not echoed");

    // The device's user, with the right passphrase, gets the key and a fresh sign-in.
    let (s, b, headers) = recover(&hub, &device, PASS).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["recovery_key"], key.as_str());
    assert_eq!(headers["cache-control"], "no-store");
    let fresh = b["access_token"].as_str().unwrap();
    assert_eq!(whoami(&hub, fresh).await.1["username"], "nurse.test");

    // A wrong passphrase gets nothing, counts towards the account's lock, and an unknown
    // device answers like a wrong passphrase.
    let (s, oo, _) = recover(&hub, &device, "not the passphrase").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{oo}");
    assert!(oo.get("recovery_key").is_none());
    let (s2, oo2, _) = recover(&hub, "dev-unknown", "not the passphrase").await;
    assert_eq!((s2, diagnostics(&oo2)), (s, diagnostics(&oo)));
    for _ in 0..4 {
        recover(&hub, &device, "still not the passphrase").await;
    }
    let (s, oo, _) = recover(&hub, &device, PASS).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "locked like a sign-in: {oo}"
    );

    // A revoked device is told to wipe, and its key is gone from the hub.
    let (_, t) = sign_in(&hub, "admin.test", PASS).await;
    let admin = t["access_token"].as_str().unwrap().to_string();
    let (s, _, _) = post_json(
        &hub,
        &format!("/admin/devices/{device}/revoke"),
        Some(&admin),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, headers) = recover(&hub, &device, PASS).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(headers["careshare-instruction"], "wipe");
    let (ok, out, err) = run_cli_env(&hub.db, &["audit", "verify"], &[]);
    assert!(ok, "{out}{err}");

    // Neither the key nor a passphrase reached the log; each step was audited.
    let log = std::fs::read_to_string(&log_path).unwrap();
    for secret in [key.as_str(), PASS, "not the passphrase", fresh] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    let (_, list, _) = run_cli_env(
        &hub.db,
        &["audit", "list", "--user", "nurse.test", "--limit", "200"],
        &[],
    );
    let events: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |code: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e["subtype"][0]["code"] == code && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(of("device-recovery-key", "0"), 1, "the key stored");
    assert_eq!(of("device-recovery", "0"), 1, "the key given back once");
    assert!(of("device-recovery", "4") >= 5, "refusals audited");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_recovery_on_sqlite() {
    device_recovery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_recovery_on_postgres() {
    device_recovery(Backend::Postgres).await;
}
