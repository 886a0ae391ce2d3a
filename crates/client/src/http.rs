//! The hub's HTTP API as typed calls, with time-outs and retries.
//!
//! Retries use exponential backoff with full jitter ([`RetryPolicy`]). What is
//! retried depends on whether a repeat is safe ([`Repeat`]):
//!
//! * every call is retried when the connection could not be made (the
//!   request never left);
//! * calls the hub treats idempotently (pull, push — by client edit id —,
//!   check-in, the audit position and upload) are also retried after a
//!   time-out, a broken connection or a 5xx answer;
//! * sign-in and token calls are not: a refresh token is spent on use, so a
//!   repeat after a lost answer would only be refused.
//!
//! Requests and answers carry tokens and passphrases; neither ever reaches an
//! error message or a log line.

use std::time::Duration;

use careshare_replica::SecretString;
use careshare_sync::{PullPage, PullRequest, PushBatch, PushResult, RawResource};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};

/// Time-outs and retries of hub calls.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Longest wait for one whole request and its answer.
    pub request_timeout: Duration,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// How failed calls are retried.
    pub retry: RetryPolicy,
    /// Allow plain `http://` to a hub that is not on this machine. Off by
    /// default: tokens and passphrases would cross the network in clear.
    /// Plain HTTP to a loopback address (`127.0.0.1`, `[::1]`, `localhost`)
    /// is always allowed.
    pub allow_insecure_http: bool,
}

impl Default for HttpConfig {
    /// 60 s per request, 10 s to connect, [`RetryPolicy::default`], HTTPS
    /// except on loopback.
    fn default() -> Self {
        HttpConfig {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
        }
    }
}

/// Whether the URL's host is this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retry).
    pub max_retries: u32,
    /// Ceiling of the first wait.
    pub base_delay: Duration,
    /// Largest ceiling of any wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries, waits drawn below 250 ms, 500 ms, 1 s, 2 s, 4 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), given a uniform
    /// random `fraction` in `[0, 1]`: `fraction × min(max_delay, base_delay × 2^retry)`.
    pub fn delay(&self, retry: u32, fraction: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        ceiling.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// A uniform random fraction in `[0, 1]` for jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    match SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}

/// Whether a call may be repeated after it may have reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// The hub treats a repeat as the same call: retry time-outs and 5xx too.
    Idempotent,
    /// Retry only when the request certainly never left.
    ConnectOnly,
}

/// A failed call, before it is turned into a [`ClientError`].
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer (after retries).
    Transport(String),
    /// An error answer.
    Status {
        status: StatusCode,
        message: String,
        /// `Careshare-Instruction: wipe` was set: the device was revoked.
        wipe: bool,
    },
    /// An answer that is not the expected JSON.
    Decode(String),
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Transport(m) => ClientError::Unreachable(m),
            CallError::Status { wipe: true, .. } => ClientError::Wiped,
            CallError::Status {
                status: StatusCode::UNAUTHORIZED,
                message,
                ..
            } => ClientError::SignInRequired { reason: message },
            CallError::Status {
                status, message, ..
            } => ClientError::Hub {
                status: status.as_u16(),
                message,
            },
            CallError::Decode(m) => ClientError::BadResponse(m),
        }
    }
}

/// The readable text of an OperationOutcome body (or a short fallback).
fn outcome_text(status: StatusCode, body: &[u8]) -> String {
    let texts: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("issue").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|issue| {
            issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .or_else(|| {
                    issue
                        .get("details")
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                })
                .map(str::to_owned)
        })
        .collect();
    if texts.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_owned()
    } else {
        texts.join("; ")
    }
}

fn wipe_instruction(headers: &HeaderMap) -> bool {
    headers.get_all("careshare-instruction").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("wipe"))
    })
}

/// Describes a transport error without its source chain's details that
/// could name a body (reqwest never includes bodies or headers; the URL has
/// no secret).
fn transport_text(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "the request failed"
    };
    match e.url() {
        Some(u) => format!("{kind} ({})", u.as_str()),
        None => kind.to_owned(),
    }
}

/// A pair of tokens from the hub.
#[derive(Debug)]
pub(crate) struct TokenPair {
    pub access: SecretString,
    pub refresh: SecretString,
    /// Seconds the access token lives.
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: String,
    #[serde(default)]
    expires_in: i64,
}

impl From<TokenBody> for TokenPair {
    fn from(b: TokenBody) -> Self {
        TokenPair {
            access: SecretString::new(b.access_token),
            refresh: SecretString::new(b.refresh_token),
            expires_in: b.expires_in,
        }
    }
}

/// Who the hub says the caller is.
#[derive(Debug, Deserialize)]
pub(crate) struct WhoAmI {
    #[serde(default)]
    pub practitioner_role: Option<String>,
}

/// A break-glass grant as the hub answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct GrantBody {
    pub patient: String,
    pub reason: String,
    pub expires_at: String,
}

/// Where the hub's copy of the device's audit chain ends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct AuditPosition {
    pub next_seq: i64,
    pub head: String,
}

/// One audit row as uploaded: `event` is the stored JSON, whose compact
/// serialisation is the hashed text.
#[derive(Debug, Serialize)]
pub(crate) struct AuditRowBody {
    pub seq: i64,
    pub recorded_at: String,
    pub event: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The hub, over HTTP.
#[derive(Debug, Clone)]
pub(crate) struct HubClient {
    base: Url,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl HubClient {
    /// A client for the hub at `base_url` (`http://` or `https://`).
    pub fn new(base_url: &str, config: &HttpConfig) -> Result<HubClient> {
        let mut base = Url::parse(base_url.trim())
            .map_err(|_| ClientError::InvalidInput(format!("{base_url:?} is not a URL")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ClientError::InvalidInput(format!(
                "the hub URL must be http:// or https:// with a host, not {base_url:?}"
            )));
        }
        if base.scheme() == "http" && !config.allow_insecure_http && !is_loopback(&base) {
            return Err(ClientError::InvalidInput(format!(
                "the hub at {} must be reached over https:// (plain http:// only on this machine)",
                base.host_str().unwrap_or("?")
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::InvalidInput(
                "the hub URL must not have a query or fragment".into(),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .no_proxy()
            .user_agent(concat!("careshare-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ClientError::Unreachable("cannot set up the HTTP client".into()))?;
        Ok(HubClient {
            base,
            http,
            retry: config.retry,
        })
    }

    /// The hub's base URL, as stored.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn url(&self, segments: &[&str]) -> Result<Url, CallError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| CallError::Transport("the hub URL cannot take a path".into()))?;
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        Ok(url)
    }

    /// Sends one request, retrying as `repeat` allows; returns a 2xx answer's
    /// body or the error.
    async fn send(
        &self,
        method: Method,
        url: Url,
        bearer: Option<&SecretString>,
        body: Option<&Zeroizing<Vec<u8>>>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, CallError> {
        let mut retry = 0u32;
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(token) = bearer {
                req = req.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
            }
            if let Some(body) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
            }
            let answer = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let wipe = wipe_instruction(resp.headers());
                    resp.bytes().await.map(|b| (status, wipe, b))
                }
                Err(e) => Err(e),
            };
            let retryable = match &answer {
                Err(e) => e.is_connect() || repeat == Repeat::Idempotent,
                Ok((status, wipe, _)) => {
                    !wipe && status.is_server_error() && repeat == Repeat::Idempotent
                }
            };
            if retryable && retry < self.retry.max_retries {
                let wait = self.retry.delay(retry, jitter());
                match &answer {
                    Err(e) => tracing::warn!(
                        "hub call failed ({}); retry {} in {:?}",
                        transport_text(e),
                        retry + 1,
                        wait
                    ),
                    Ok((status, _, _)) => {
                        tracing::warn!("hub answered {status}; retry {} in {:?}", retry + 1, wait)
                    }
                }
                tokio::time::sleep(wait).await;
                retry += 1;
                continue;
            }
            return match answer {
                Err(e) => Err(CallError::Transport(transport_text(&e))),
                Ok((status, _, body)) if status.is_success() => Ok(body.to_vec()),
                Ok((status, wipe, body)) => Err(CallError::Status {
                    status,
                    message: outcome_text(status, &body),
                    wipe,
                }),
            };
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        bearer: Option<&SecretString>,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T, CallError> {
        self.call_query(method, segments, &[], bearer, body, repeat)
            .await
    }

    async fn call_query<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        bearer: Option<&SecretString>,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T, CallError> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(Zeroizing::new))
            .transpose()
            .map_err(|_| CallError::Decode("cannot encode the request".into()))?;
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let answer = Zeroizing::new(
            self.send(method, url, bearer, body.as_ref(), repeat)
                .await?,
        );
        serde_json::from_slice(&answer).map_err(|e| {
            CallError::Decode(format!(
                "/{} answered JSON of an unexpected shape (line {} column {})",
                segments.join("/"),
                e.line(),
                e.column()
            ))
        })
    }

    fn encode<T: Serialize>(v: &T) -> Result<Value, CallError> {
        serde_json::to_value(v).map_err(|_| CallError::Decode("cannot encode the request".into()))
    }

    /// `POST /auth/token`.
    pub async fn sign_in(
        &self,
        username: &str,
        passphrase: &SecretString,
    ) -> Result<TokenPair, CallError> {
        let body = json!({"username": username, "passphrase": passphrase.expose()});
        let result = self
            .call::<TokenBody>(
                Method::POST,
                &["auth", "token"],
                None,
                Some(&body),
                Repeat::ConnectOnly,
            )
            .await;
        zeroize_value(body);
        Ok(result?.into())
    }

    /// `POST /auth/refresh`: the old refresh token is spent.
    pub async fn refresh(&self, refresh: &SecretString) -> Result<TokenPair, CallError> {
        let body = json!({"refresh_token": refresh.expose()});
        let result = self
            .call::<TokenBody>(
                Method::POST,
                &["auth", "refresh"],
                None,
                Some(&body),
                Repeat::ConnectOnly,
            )
            .await;
        zeroize_value(body);
        Ok(result?.into())
    }

    /// `GET /auth/whoami`.
    pub async fn whoami(&self, access: &SecretString) -> Result<WhoAmI, CallError> {
        self.call(
            Method::GET,
            &["auth", "whoami"],
            Some(access),
            None,
            Repeat::Idempotent,
        )
        .await
    }

    /// `POST /auth/devices`: registers a public key; returns the device id.
    pub async fn register_device(
        &self,
        user_access: &SecretString,
        name: &str,
        public_key_b64: &str,
    ) -> Result<String, CallError> {
        #[derive(Deserialize)]
        struct Registered {
            device_id: String,
        }
        let body = json!({"name": name, "public_key": public_key_b64});
        let r: Registered = self
            .call(
                Method::POST,
                &["auth", "devices"],
                Some(user_access),
                Some(&body),
                Repeat::ConnectOnly,
            )
            .await?;
        Ok(r.device_id)
    }

    /// `POST /auth/devices/{id}/challenge`: a nonce to sign.
    pub async fn challenge(
        &self,
        user_access: &SecretString,
        device_id: &str,
    ) -> Result<String, CallError> {
        #[derive(Deserialize)]
        struct Challenge {
            nonce: String,
        }
        let c: Challenge = self
            .call(
                Method::POST,
                &["auth", "devices", device_id, "challenge"],
                Some(user_access),
                Some(&json!({})),
                Repeat::ConnectOnly,
            )
            .await?;
        Ok(c.nonce)
    }

    /// `POST /auth/devices/{id}/token`: tokens bound to user and device.
    pub async fn device_token(
        &self,
        user_access: &SecretString,
        device_id: &str,
        nonce: &str,
        signature_b64: &str,
    ) -> Result<TokenPair, CallError> {
        let body = json!({"nonce": nonce, "signature": signature_b64});
        let t: TokenBody = self
            .call(
                Method::POST,
                &["auth", "devices", device_id, "token"],
                Some(user_access),
                Some(&body),
                Repeat::ConnectOnly,
            )
            .await?;
        Ok(t.into())
    }

    /// `POST /sync/pull`. The page's resources are kept as the JSON text the hub sent,
    /// unparsed, to be stored as they are.
    pub async fn pull(
        &self,
        access: &SecretString,
        request: &PullRequest,
    ) -> Result<PullPage<RawResource>, CallError> {
        let body = Self::encode(request)?;
        self.call(
            Method::POST,
            &["sync", "pull"],
            Some(access),
            Some(&body),
            Repeat::Idempotent,
        )
        .await
    }

    /// `POST /sync/push` (idempotent by client edit id).
    pub async fn push(
        &self,
        access: &SecretString,
        batch: &PushBatch,
    ) -> Result<PushResult, CallError> {
        let body = Self::encode(batch)?;
        self.call(
            Method::POST,
            &["sync", "push"],
            Some(access),
            Some(&body),
            Repeat::Idempotent,
        )
        .await
    }

    /// `POST /sync/checkin`: the new end of the offline lease.
    pub async fn checkin(&self, access: &SecretString) -> Result<DateTime<Utc>, CallError> {
        #[derive(Deserialize)]
        struct Lease {
            lease_until: String,
        }
        let lease: Lease = self
            .call(
                Method::POST,
                &["sync", "checkin"],
                Some(access),
                Some(&json!({})),
                Repeat::Idempotent,
            )
            .await?;
        DateTime::parse_from_rfc3339(&lease.lease_until)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| CallError::Decode("lease_until is not an RFC 3339 time".into()))
    }

    /// `PUT /auth/devices/{id}/recovery-key` with a device-bound token: the
    /// hub keeps the device's recovery key (replacing the one before).
    pub async fn set_recovery_key(
        &self,
        access: &SecretString,
        device_id: &str,
        recovery_key: &SecretString,
    ) -> Result<(), CallError> {
        let body = json!({"recovery_key": recovery_key.expose()});
        let result = self
            .call::<serde::de::IgnoredAny>(
                Method::PUT,
                &["auth", "devices", device_id, "recovery-key"],
                Some(access),
                Some(&body),
                Repeat::Idempotent,
            )
            .await;
        zeroize_value(body);
        result.map(|_| ())
    }

    /// `POST /auth/devices/{id}/recover`: the device's user signs in again
    /// and gets the device's recovery key back, with a (not device-bound)
    /// token pair for proving the device.
    pub async fn recover_device(
        &self,
        device_id: &str,
        passphrase: &SecretString,
    ) -> Result<(TokenPair, SecretString), CallError> {
        #[derive(Deserialize)]
        struct Recovered {
            #[serde(flatten)]
            tokens: TokenBody,
            recovery_key: String,
        }
        let body = json!({"passphrase": passphrase.expose()});
        let result = self
            .call::<Recovered>(
                Method::POST,
                &["auth", "devices", device_id, "recover"],
                None,
                Some(&body),
                Repeat::ConnectOnly,
            )
            .await;
        zeroize_value(body);
        let r = result?;
        Ok((r.tokens.into(), SecretString::new(r.recovery_key)))
    }

    /// `POST /careshare/break-glass` naming the patient by NHS number.
    pub async fn break_glass(
        &self,
        access: &SecretString,
        nhs_number: &str,
        reason: &str,
    ) -> Result<GrantBody, CallError> {
        let body = json!({"nhs_number": nhs_number, "reason": reason});
        self.call(
            Method::POST,
            &["careshare", "break-glass"],
            Some(access),
            Some(&body),
            Repeat::ConnectOnly,
        )
        .await
    }

    /// `GET /fhir/{resource_type}?{query}`: one searchset page.
    pub async fn search(
        &self,
        access: &SecretString,
        resource_type: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, CallError> {
        self.call_query(
            Method::GET,
            &["fhir", resource_type],
            query,
            Some(access),
            None,
            Repeat::Idempotent,
        )
        .await
    }

    /// `GET /fhir/{resource_type}/{id}`.
    pub async fn read(
        &self,
        access: &SecretString,
        resource_type: &str,
        id: &str,
    ) -> Result<Value, CallError> {
        self.call(
            Method::GET,
            &["fhir", resource_type, id],
            Some(access),
            None,
            Repeat::Idempotent,
        )
        .await
    }

    /// `GET /sync/audit`.
    pub async fn audit_position(&self, access: &SecretString) -> Result<AuditPosition, CallError> {
        self.call(
            Method::GET,
            &["sync", "audit"],
            Some(access),
            None,
            Repeat::Idempotent,
        )
        .await
    }

    /// `POST /sync/audit`.
    pub async fn upload_audit(
        &self,
        access: &SecretString,
        events: &[AuditRowBody],
        signature_b64: &str,
    ) -> Result<AuditPosition, CallError> {
        let body = json!({"events": events, "signature": signature_b64});
        self.call(
            Method::POST,
            &["sync", "audit"],
            Some(access),
            Some(&body),
            Repeat::Idempotent,
        )
        .await
    }
}

/// Best-effort zeroizing of a JSON body that held a secret.
fn zeroize_value(v: Value) {
    if let Value::Object(map) = v {
        for (_, v) in map {
            if let Value::String(s) = v {
                drop(Zeroizing::new(s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(4, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(400));
        assert_eq!(p.delay(3, 7.0), Duration::from_millis(800), "clamped");
        let j = jitter();
        assert!((0.0..=1.0).contains(&j));
    }

    #[test]
    fn outcome_text_reads_issues() {
        let body = br#"{"resourceType":"OperationOutcome","issue":[
            {"severity":"error","code":"login","diagnostics":"the token has expired"},
            {"severity":"error","code":"x","details":{"text":"second"}}]}"#;
        assert_eq!(
            outcome_text(StatusCode::UNAUTHORIZED, body),
            "the token has expired; second"
        );
        assert_eq!(
            outcome_text(StatusCode::BAD_GATEWAY, b"<html>"),
            "Bad Gateway"
        );
    }

    #[test]
    fn wipe_header_is_recognised() {
        let mut h = HeaderMap::new();
        assert!(!wipe_instruction(&h));
        h.insert("Careshare-Instruction", "Wipe".parse().unwrap());
        assert!(wipe_instruction(&h));
    }

    #[test]
    fn call_errors_map_to_client_errors() {
        let e: ClientError = CallError::Status {
            status: StatusCode::FORBIDDEN,
            message: "revoked".into(),
            wipe: true,
        }
        .into();
        assert!(matches!(e, ClientError::Wiped));
        let e: ClientError = CallError::Status {
            status: StatusCode::UNAUTHORIZED,
            message: "expired".into(),
            wipe: false,
        }
        .into();
        assert!(matches!(e, ClientError::SignInRequired { .. }));
        let e: ClientError = CallError::Status {
            status: StatusCode::CONFLICT,
            message: "x".into(),
            wipe: false,
        }
        .into();
        assert!(matches!(e, ClientError::Hub { status: 409, .. }));
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let hub = HubClient::new("http://127.0.0.1:8080/region", &HttpConfig::default()).unwrap();
        assert_eq!(
            hub.url(&["auth", "devices", "dev/1", "token"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/region/auth/devices/dev%2F1/token"
        );
        let hub = HubClient::new("http://127.0.0.1:8080", &HttpConfig::default()).unwrap();
        assert_eq!(hub.base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            hub.url(&["sync", "pull"]).unwrap().as_str(),
            "http://127.0.0.1:8080/sync/pull"
        );
        assert!(HubClient::new("ftp://x", &HttpConfig::default()).is_err());
        assert!(HubClient::new("http://hub.example.org", &HttpConfig::default()).is_err());
        assert!(HubClient::new("http://localhost:8080", &HttpConfig::default()).is_ok());
        assert!(HubClient::new("http://[::1]:8080", &HttpConfig::default()).is_ok());
        assert!(HubClient::new("https://hub.example.org", &HttpConfig::default()).is_ok());
        let insecure = HttpConfig {
            allow_insecure_http: true,
            ..HttpConfig::default()
        };
        assert!(HubClient::new("http://hub.example.org", &insecure).is_ok());
        assert!(HubClient::new("not a url", &HttpConfig::default()).is_err());
    }

    #[test]
    fn token_pairs_do_not_print() {
        let t: TokenPair = TokenBody {
            access_token: "acc-secret-1".into(),
            refresh_token: "ref-secret-2".into(),
            expires_in: 900,
        }
        .into();
        let s = format!("{t:?}");
        assert!(
            !s.contains("acc-secret-1") && !s.contains("ref-secret-2"),
            "{s}"
        );
    }
}
