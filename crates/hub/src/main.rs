//! `careshare-hub`: serve the region's shared record, import FHIR data, create a demo region.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use careshare_hub::api::{router, AppState};
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
        } => {
            let store = Arc::new(open(db).await?);
            let app = router(AppState {
                store: store.clone(),
                base_url: public_url,
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
            store.close().await;
            Ok(())
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
            store.close().await;
            if !summary.rejected.is_empty() {
                bail!("{} demo resources were refused", summary.rejected.len());
            }
            println!("demo region: {patients} patients (seed {seed}, planned around {today})");
            println!("demo staff (sign-in names):");
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
