//! `careshare-hub`: serve the region's shared record, import FHIR data, create a demo region.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use careshare_hub::api::{router, AppState};
use careshare_hub::audit;
use careshare_hub::auth::{Auth, AuthConfig, Secret};
use careshare_hub::import;
use careshare_hub::store::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "careshare-hub",
    version,
    about = "The Careshare regional hub: a shared health and care record as FHIR R4"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DbArg {
    /// Database URL: sqlite://PATH (the embedded default) or postgres://HOST[:PORT]/DB.
    /// Defaults to a SQLite file in the user's data folder.
    #[arg(long, env = "CARESHARE_DB")]
    db: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FHIR API under /fhir. Migrations apply at start.
    Serve {
        #[command(flatten)]
        db: DbArg,
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, env = "CARESHARE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Public base URL of the FHIR API, used in links (default: from the Host header).
        #[arg(long, env = "CARESHARE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Rows of a device's sync feed written per transaction when a refresh is large
        /// (a first sync): the device takes its first pages while the rest is written.
        #[arg(long, env = "CARESHARE_SYNC_CHUNK_ROWS", default_value_t = careshare_hub::sync::CHUNK_ROWS,
              value_parser = clap::value_parser!(usize))]
        sync_chunk_rows: usize,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Staff accounts and devices.
    Admin {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit trail.
    Audit {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Load FHIR R4 JSON files or folders: resources, Bundles (transaction, batch,
    /// collection, searchset) and NDJSON. Loading the same input twice changes nothing.
    Import {
        #[command(flatten)]
        db: DbArg,
        /// Files or folders to load.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Create a deterministic synthetic region (organisations, staff, patients and their
    /// records) and load it, or write it as NDJSON with --out.
    DemoRegion {
        #[command(flatten)]
        db: DbArg,
        /// Number of patients.
        #[arg(long, default_value_t = 500)]
        patients: usize,
        /// Random seed: the same seed (and date) gives byte-identical output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The date the region's visits and tasks are planned around (default: today).
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
        /// Write the region as NDJSON to this file instead of loading it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct AuthArgs {
    /// PBKDF2 iterations for new passphrase hashes.
    #[arg(long, env = "CARESHARE_PBKDF2_ITERATIONS", default_value_t = 600_000)]
    pbkdf2_iterations: u32,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "CARESHARE_ACCESS_TTL_SECS", default_value_t = 900)]
    access_ttl_secs: i64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "CARESHARE_REFRESH_TTL_SECS", default_value_t = 43_200)]
    refresh_ttl_secs: i64,
    /// Longest a device may work offline before it must check in, in days.
    #[arg(long, env = "CARESHARE_LEASE_DAYS", default_value_t = 7)]
    lease_days: i64,
}

impl AuthArgs {
    fn config(&self) -> AuthConfig {
        AuthConfig {
            pbkdf2_iterations: self.pbkdf2_iterations,
            access_ttl_secs: self.access_ttl_secs,
            refresh_ttl_secs: self.refresh_ttl_secs,
            lease_days: self.lease_days,
        }
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a staff account (or set its passphrase), bound to a PractitionerRole. The
    /// passphrase is read from CARESHARE_PASSPHRASE or, if unset, from standard input.
    CreateUser {
        #[arg(long)]
        username: String,
        /// The PractitionerRole id that gives the account its role, organisation and teams.
        #[arg(long)]
        role_id: String,
    },
    /// Revoke a user at once: their tokens stop working and they cannot sign in.
    RevokeUser { username: String },
    /// Revoke a device at once: its next contact is told to wipe its record.
    RevokeDevice { device_id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit trail's hash chain: any changed or removed row is reported.
    Verify,
    /// The patient access report: who viewed or changed the record, when, from which
    /// organisation and why.
    Report {
        #[arg(long)]
        patient: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List audit events, newest first, as JSON lines.
    List {
        #[arg(long)]
        patient: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

fn read_passphrase() -> Result<Secret> {
    if let Ok(p) = std::env::var("CARESHARE_PASSPHRASE") {
        return Ok(Secret::new(p));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the passphrase from standard input")?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}

/// The passphrase of every demo account. Demo regions are for demonstrations and tests only.
const DEMO_PASSPHRASE: &str = "careshare-demo-2026";

fn default_db() -> Result<String> {
    let dir = dirs::data_dir()
        .context("no user data folder: pass --db")?
        .join("careshare");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("hub.sqlite").display()))
}

async fn open(db: DbArg) -> Result<Store> {
    let url = match db.db {
        Some(u) => u,
        None => default_db()?,
    };
    Store::connect(&url)
        .await
        .with_context(|| format!("opening the store at {}", redact(&url)))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CARESHARE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            db,
            listen,
            public_url,
            sync_chunk_rows,
            auth,
        } => {
            let store = Arc::new(open(db).await?);
            let sync_lock = Arc::new(careshare_hub::sync::FeedLock::new(sync_chunk_rows));
            let app = router(AppState {
                store: store.clone(),
                auth: Arc::new(auth.config()),
                base_url: public_url,
                sync_lock: sync_lock.clone(),
            });
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            println!("Careshare hub listening on http://{addr}/fhir");
            std::io::stdout().flush()?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
            // A feed still being written is finished first.
            drop(sync_lock.lock().await);
            store.close().await;
            Ok(())
        }
        Command::Admin { db, auth, command } => {
            let store = open(db).await?;
            let config = auth.config();
            let a = Auth {
                store: &store,
                config: &config,
            };
            let now = chrono::Utc::now().timestamp_micros();
            let mut record = audit::Record::new(audit::Action::Revocation);
            record.username = Some("careshare-hub admin (command line)".into());
            record.purpose = Some("HSYSADMIN".into());
            match command {
                AdminCommand::CreateUser { username, role_id } => {
                    a.put_account(&username, &role_id, &read_passphrase()?)
                        .await?;
                    println!("account {username} set (PractitionerRole/{role_id})");
                }
                AdminCommand::RevokeUser { username } => {
                    let changed = a.revoke_user(&username, now).await?;
                    record.description = Some(format!("user {username} revoked"));
                    audit::append(&store, &record, now).await?;
                    println!(
                        "user {username} revoked{}",
                        if changed {
                            ""
                        } else {
                            " (already revoked or unknown)"
                        }
                    );
                }
                AdminCommand::RevokeDevice { device_id } => {
                    let changed = a.revoke_device(&device_id, now).await?;
                    record.entities.push(format!("Device/{device_id}"));
                    record.description = Some(format!("device {device_id} revoked"));
                    audit::append(&store, &record, now).await?;
                    println!(
                        "device {device_id} revoked{}",
                        if changed {
                            ""
                        } else {
                            " (already revoked or unknown)"
                        }
                    );
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Audit { db, command } => {
            let store = open(db).await?;
            let result = match command {
                AuditCommand::Verify => match audit::verify(&store).await? {
                    Ok(n) => {
                        println!("audit trail intact: {n} events, every hash and link checks");
                        Ok(())
                    }
                    Err(br) => Err(anyhow::anyhow!("audit trail broken: {br}")),
                },
                AuditCommand::Report { patient, json } => {
                    let rep = careshare_hub::report::access_report(&store, &patient).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&rep.to_json())?);
                    } else {
                        print!("{}", rep.to_text());
                    }
                    Ok(())
                }
                AuditCommand::List {
                    patient,
                    user,
                    limit,
                } => {
                    let filter = audit::Filter {
                        patient_id: patient,
                        username: user,
                        limit,
                        ..audit::Filter::default()
                    };
                    for ev in audit::list(&store, &filter).await? {
                        println!("{ev}");
                    }
                    Ok(())
                }
            };
            store.close().await;
            result
        }
        Command::Import { db, paths } => {
            let store = open(db).await?;
            let summary = import::import_paths(&store, &paths).await?;
            print!("{summary}");
            store.close().await;
            Ok(())
        }
        Command::DemoRegion {
            db,
            patients,
            seed,
            today,
            out,
        } => {
            let today = today.unwrap_or_else(|| chrono::Local::now().date_naive());
            let region = careshare_demo::Region::new(careshare_demo::RegionConfig::new(
                patients, seed, today,
            ))?;
            if let Some(out) = out {
                let file = std::fs::File::create(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let mut w = std::io::BufWriter::new(file);
                for r in region
                    .structure()
                    .into_iter()
                    .chain(region.patients().flatten())
                {
                    serde_json::to_writer(&mut w, &r)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
                println!("wrote the demo region to {}", out.display());
                return Ok(());
            }
            let store = open(db).await?;
            let summary = import::load_demo_region(&store, &region, patients).await?;
            print!("{summary}");
            if !summary.rejected.is_empty() {
                bail!("{} demo resources were refused", summary.rejected.len());
            }
            let config = AuthConfig {
                pbkdf2_iterations: std::env::var("CARESHARE_PBKDF2_ITERATIONS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(AuthConfig::default().pbkdf2_iterations),
                ..AuthConfig::default()
            };
            let a = Auth {
                store: &store,
                config: &config,
            };
            let pass = Secret::new(DEMO_PASSPHRASE);
            for m in region.staff() {
                if !a.account_exists(&m.username).await? {
                    a.put_account(&m.username, &m.practitioner_role_id, &pass)
                        .await?;
                }
            }
            store.close().await;
            println!("demo region: {patients} patients (seed {seed}, planned around {today})");
            println!("demo sign-ins (the passphrase of every demo account is {DEMO_PASSPHRASE}):");
            for m in region.demo_sign_ins() {
                println!(
                    "  {:<24} {} ({})",
                    m.username,
                    m.display_name,
                    m.role.display()
                );
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://care:s3cret@db.example:5432/hub"),
            "postgres://care:***@db.example:5432/hub"
        );
        assert_eq!(
            redact("sqlite:///var/lib/hub.sqlite"),
            "sqlite:///var/lib/hub.sqlite"
        );
    }
}
