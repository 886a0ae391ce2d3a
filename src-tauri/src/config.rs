//! The core's configuration from the environment (the only place the shell
//! reads it).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `CARESHARE_DIR` | the replica's directory | the platform data dir + `careshare` (as the `careshare` CLI) |
//! | `CARESHARE_HUB_URL` | the hub offered on the first-run screen | empty |
//! | `CARESHARE_IDLE_LOCK_SECONDS` | lock after this many idle seconds | 300 |
//! | `CARESHARE_SYNC_INTERVAL_SECONDS` | sync (and retry when offline) this often | 60 |
//! | `CARESHARE_REPLICA_ITERATIONS` | hidden, for tests: PBKDF2 iterations of a new replica (at least 1000) | 600,000 |
//! | `CARESHARE_LOG` | log filter (`tracing-subscriber` env filter) | `info` |

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use careshare_client::{HttpConfig, KeyParams};

use crate::core::Config;

/// Default idle lock.
pub const DEFAULT_IDLE_LOCK_SECONDS: u64 = 300;
/// Default sync interval.
pub const DEFAULT_SYNC_INTERVAL_SECONDS: u64 = 60;
/// Fewest PBKDF2 iterations accepted from `CARESHARE_REPLICA_ITERATIONS`.
pub const MIN_ITERATIONS: u32 = 1000;

/// Why the environment is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that is not allowed.
    #[error("{name}: {message}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No data directory is known.
    #[error("no data directory: set CARESHARE_DIR")]
    NoDataDir,
}

fn seconds(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a whole number of seconds above 0"),
            }),
        },
    }
}

/// The host name, for the default device name.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "Careshare desktop".into())
}

/// The configuration from variables read by `get` (`std::env::var` in the
/// app), with `data_dir` as the platform data directory.
pub fn from_vars(
    get: &dyn Fn(&str) -> Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let dir = match get("CARESHARE_DIR").filter(|d| !d.trim().is_empty()) {
        Some(d) => PathBuf::from(d),
        None => data_dir.ok_or(ConfigError::NoDataDir)?.join("careshare"),
    };
    let mut key_params = KeyParams::default();
    if let Some(v) = get("CARESHARE_REPLICA_ITERATIONS").filter(|v| !v.trim().is_empty()) {
        let n = v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= MIN_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or_else(|| ConfigError::Invalid {
                name: "CARESHARE_REPLICA_ITERATIONS",
                message: format!("must be a whole number of at least {MIN_ITERATIONS}"),
            })?;
        key_params = KeyParams { iterations: n };
    }
    Ok(Config {
        dir,
        default_hub_url: get("CARESHARE_HUB_URL")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        default_device_name: host_name(),
        idle_lock: seconds(
            get,
            "CARESHARE_IDLE_LOCK_SECONDS",
            DEFAULT_IDLE_LOCK_SECONDS,
        )?,
        sync_interval: seconds(
            get,
            "CARESHARE_SYNC_INTERVAL_SECONDS",
            DEFAULT_SYNC_INTERVAL_SECONDS,
        )?,
        key_params,
        http: HttpConfig::default(),
        utc_offset: None,
    })
}

/// The configuration from the process environment.
pub fn from_env() -> Result<Config, ConfigError> {
    from_vars(&|name| std::env::var(name).ok(), dirs::data_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_vars(
            &|k| map.get(k).cloned(),
            Some(PathBuf::from("/home/amy/.local/share")),
        )
    }

    #[test]
    fn defaults_and_overrides() {
        let c = with(&[]).unwrap();
        assert_eq!(c.dir, PathBuf::from("/home/amy/.local/share/careshare"));
        assert_eq!(c.idle_lock, Duration::from_secs(300));
        assert_eq!(c.sync_interval, Duration::from_secs(60));
        assert_eq!(c.key_params.iterations.get(), 600_000);
        assert_eq!(c.default_hub_url, "");
        let c = with(&[
            ("CARESHARE_DIR", "/tmp/r"),
            ("CARESHARE_HUB_URL", "https://hub.example.nhs.uk "),
            ("CARESHARE_IDLE_LOCK_SECONDS", "30"),
            ("CARESHARE_SYNC_INTERVAL_SECONDS", "5"),
            ("CARESHARE_REPLICA_ITERATIONS", "1000"),
        ])
        .unwrap();
        assert_eq!(c.dir, PathBuf::from("/tmp/r"));
        assert_eq!(c.default_hub_url, "https://hub.example.nhs.uk");
        assert_eq!(c.idle_lock, Duration::from_secs(30));
        assert_eq!(c.sync_interval, Duration::from_secs(5));
        assert_eq!(c.key_params.iterations.get(), 1000);
        assert!(with(&[("CARESHARE_REPLICA_ITERATIONS", "10")]).is_err());
        assert!(with(&[("CARESHARE_IDLE_LOCK_SECONDS", "soon")]).is_err());
        assert!(with(&[("CARESHARE_IDLE_LOCK_SECONDS", "0")]).is_err());
    }
}
