//! `careshare`: the Careshare desktop client on the command line. Each command
//! opens the replica, does one thing through `careshare-client`, and locks
//! the replica again when it exits.
//!
//! Passphrases come from the environment (`CARESHARE_HUB_PASSPHRASE`,
//! `CARESHARE_PASSPHRASE`) or standard input: a prompt without echo on a
//! terminal, otherwise one line each, the hub passphrase first.
//!
//! Exit codes: 0 ok, 1 other failure, 2 usage, 3 locked or wrong passphrase,
//! 4 device revoked and replica wiped.

use std::io::{BufRead, IsTerminal};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use careshare_client::{
    enrol, reauthorise, ClientError, Enrolment, HttpConfig, KeyParams, Passphrase, ReplicaFiles,
    Resolution, SecretString, Session, Status, SyncOptions, SyncProgress, SyncReport,
};
use chrono::Utc;
use clap::{ArgAction, Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// Appends a line to the command's output (printed once at the end, so a
/// closed pipe never interrupts a command half-way).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

const PASSPHRASE_ENV: &str = "CARESHARE_PASSPHRASE";
const HUB_PASSPHRASE_ENV: &str = "CARESHARE_HUB_PASSPHRASE";

#[derive(Parser)]
#[command(
    name = "careshare",
    version,
    about = "Careshare desktop client: enrol this device, keep its encrypted replica in sync with the hub.",
    after_help = "Passphrases: CARESHARE_HUB_PASSPHRASE and CARESHARE_PASSPHRASE, else read from \
                  standard input (hub passphrase first).\n\
                  Exit codes: 0 ok, 1 failure, 2 usage, 3 locked or wrong passphrase, 4 device revoked (replica wiped)."
)]
struct Cli {
    /// Replica directory [default: the user's data directory + careshare]
    #[arg(long, global = true, env = "CARESHARE_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More log lines on standard error (-v info, -vv debug); RUST_LOG overrides.
    #[arg(long, short, global = true, action = ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with the hub and create its encrypted replica.
    Enrol(EnrolArgs),
    /// Pull changes, push queued edits, upload the audit trail, renew the lease.
    Sync {
        /// Changes asked for per page.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=2000))]
        page_size: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show edits pending, conflicts, last sync, lease and per-patient freshness.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the queued edits (pending, sent, rejected with the hub's reason).
    Outbox {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the open conflicts.
    Conflicts {
        /// Print as JSON (with base, ours, theirs).
        #[arg(long)]
        json: bool,
    },
    /// Resolve a conflict: keep mine, theirs, or a combined version from a file.
    Resolve(ResolveArgs),
    /// Queue an offline edit of a FHIR resource (JSON file); prints its edit id.
    Edit {
        /// The edited resource (JSON). Without an id it is a create.
        #[arg(long, value_name = "RESOURCE.json")]
        file: PathBuf,
        /// Hub version the edit started from [default: the synced copy's]
        #[arg(long, value_name = "N")]
        base_version: Option<i64>,
    },
    /// Show a resource as this device sees it (recorded in the audit trail).
    View {
        /// FHIR resource type, e.g. Observation.
        resource_type: String,
        /// Resource id.
        id: String,
    },
    /// Drop an edit the hub rejected (see `careshare outbox`).
    Discard {
        /// The edit's id.
        edit_id: String,
    },
    /// Sign in to the hub again when the device's sign-in has run out.
    Signin,
    /// Re-authorise a device locked after too many wrong passphrases (or whose
    /// passphrase is forgotten): sign in to the hub again and set a new replica
    /// passphrase (CARESHARE_PASSPHRASE or the second line of standard input).
    Reauthorise,
    /// Confirm the replica is locked at rest (every command locks it on exit).
    Lock,
}

#[derive(Args)]
struct EnrolArgs {
    /// Base URL of the hub, e.g. http://127.0.0.1:8080
    #[arg(long, env = "CARESHARE_HUB", value_name = "URL")]
    hub: String,
    /// Hub user name.
    #[arg(long, env = "CARESHARE_USER", value_name = "NAME")]
    user: String,
    /// Name to register the device under [default: the host name]
    #[arg(long, value_name = "N")]
    device_name: Option<String>,
    /// PBKDF2 iterations of the replica key file (for tests; at least 1000).
    #[arg(long, env = "CARESHARE_REPLICA_ITERATIONS", hide = true)]
    kdf_iterations: Option<u32>,
}

#[derive(Args)]
struct ResolveArgs {
    /// Conflict id (from `careshare conflicts`).
    id: i64,
    #[command(flatten)]
    side: Side,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Side {
    /// Keep this device's version.
    #[arg(long)]
    mine: bool,
    /// Keep the hub's version.
    #[arg(long)]
    theirs: bool,
    /// Use the version in this JSON file.
    #[arg(long, value_name = "FILE")]
    combined: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // More than one thread: a sync fetches the next page while it stores this one.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write the output: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.chain().find_map(|c| c.downcast_ref::<ClientError>()) {
        Some(ClientError::WrongPassphrase { .. } | ClientError::Locked) => 3,
        Some(ClientError::Wiped) => 4,
        _ => 1,
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = dirs::data_dir() {
        return Ok(d.join("careshare"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/careshare")),
        None => bail!("no data directory: pass --dir or set CARESHARE_DIR"),
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "Careshare desktop".into())
}

/// Reads passphrases from the environment or standard input.
struct Secrets {
    stdin: Option<std::io::StdinLock<'static>>,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets { stdin: None }
    }

    fn read(&mut self, env: &str, prompt: &str) -> anyhow::Result<String> {
        if let Ok(v) = std::env::var(env) {
            if !v.is_empty() {
                return Ok(v);
            }
        }
        if std::io::stdin().is_terminal() {
            return console::Term::stderr()
                .write_str(&format!("{prompt}: "))
                .and_then(|()| console::Term::stderr().read_secure_line())
                .with_context(|| format!("cannot read the {prompt}"));
        }
        let stdin = self.stdin.get_or_insert_with(|| std::io::stdin().lock());
        let mut line = String::new();
        let n = stdin
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {prompt}"))?;
        if n == 0 {
            bail!("no {prompt}: set {env} or give it on standard input");
        }
        let len = line.trim_end_matches(['\r', '\n']).len();
        line.truncate(len);
        Ok(line)
    }

    fn replica(&mut self) -> anyhow::Result<Passphrase> {
        self.read(PASSPHRASE_ENV, "replica passphrase")
            .map(Passphrase::new)
    }

    fn hub(&mut self) -> anyhow::Result<SecretString> {
        self.read(HUB_PASSPHRASE_ENV, "hub passphrase")
            .map(SecretString::new)
    }
}

fn open(dir: &Path, secrets: &mut Secrets) -> anyhow::Result<Session> {
    let pass = secrets.replica()?;
    Ok(Session::open(dir, &pass, Utc::now())?)
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let mut out = String::new();
    let dir = match cli.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    let mut secrets = Secrets::new();
    match cli.command {
        Command::Enrol(args) => {
            let hub_pass = secrets.hub()?;
            let replica_pass = secrets.replica()?;
            let mut e = Enrolment::new(&dir, &args.hub, &args.user, hub_pass, replica_pass);
            e.device_name = args.device_name.unwrap_or_else(host_name);
            if let Some(n) = args.kdf_iterations {
                if n < 1000 {
                    bail!("--kdf-iterations must be at least 1000");
                }
                e.key_params = KeyParams {
                    iterations: NonZeroU32::new(n).context("iterations")?,
                };
            }
            let session = enrol(e, Utc::now()).await?;
            let d = session.device().clone();
            session.lock()?;
            say!(out, "enrolled: device {} ({})", d.device_id, d.device_name);
            say!(out, "user: {}", d.username);
            say!(out, "hub: {}", d.hub_url);
            say!(out, "replica: {}", dir.display());
        }
        Command::Sync { page_size, json } => {
            let report = sync(&dir, &mut secrets, page_size, cli.quiet).await?;
            if json {
                say!(out, "{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&mut out, &report);
            }
        }
        Command::Status { json } => {
            let session = open(&dir, &mut secrets)?;
            let status = session.status()?;
            session.lock()?;
            if json {
                say!(out, "{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&mut out, &status);
            }
        }
        Command::Outbox { json } => {
            let session = open(&dir, &mut secrets)?;
            let outbox = session.outbox()?;
            session.lock()?;
            if json {
                say!(out, "{}", serde_json::to_string_pretty(&outbox)?);
            } else {
                for e in outbox {
                    let why = e.outcome.as_ref().map(outcome_text).unwrap_or_default();
                    say!(
                        out,
                        "{}\t{}\t{}/{}\t{}\t{}",
                        e.client_edit_id,
                        e.state,
                        e.resource_type,
                        e.resource_id,
                        if e.deletes { "delete" } else { "update" },
                        why
                    );
                }
            }
        }
        Command::Conflicts { json } => {
            let session = open(&dir, &mut secrets)?;
            let conflicts = session.conflicts()?;
            session.lock()?;
            if json {
                say!(out, "{}", serde_json::to_string_pretty(&conflicts)?);
            } else {
                for c in conflicts {
                    let n = c.elements.as_array().map_or(0, Vec::len);
                    say!(
                        out,
                        "{}\t{}/{}\tPatient/{}\t{}\t{} element(s) in conflict",
                        c.id,
                        c.resource_type,
                        c.resource_id,
                        c.patient_id,
                        c.detected_at.to_rfc3339(),
                        n
                    );
                }
            }
        }
        Command::Resolve(args) => {
            let choice = if args.side.mine {
                Resolution::Mine
            } else if args.side.theirs {
                Resolution::Theirs
            } else if let Some(file) = &args.side.combined {
                Resolution::Combined(read_json(file)?)
            } else {
                bail!("choose --mine, --theirs or --combined FILE");
            };
            let mut session = open(&dir, &mut secrets)?;
            let resolved = session.resolve(args.id, choice, Utc::now())?;
            session.lock()?;
            say!(out, "resolved: conflict {}", resolved.conflict_id);
            if let Some(edit) = &resolved.edit_id {
                say!(out, "edit: {edit}");
            }
            say!(
                out,
                "provenance: Provenance/{} (edit {})",
                resolved.provenance_id,
                resolved.provenance_edit_id
            );
        }
        Command::Edit { file, base_version } => {
            let resource = read_json(&file)?;
            let mut session = open(&dir, &mut secrets)?;
            let id = session.record_edit(resource, base_version, Utc::now())?;
            session.lock()?;
            say!(out, "{id}");
        }
        Command::View { resource_type, id } => {
            let mut session = open(&dir, &mut secrets)?;
            let view = session.view(&resource_type, &id, Utc::now())?;
            session.lock()?;
            match view {
                Some(v) => say!(out, "{}", serde_json::to_string_pretty(&v.resource)?),
                None => bail!("{resource_type}/{id} is not in this replica"),
            }
        }
        Command::Discard { edit_id } => {
            let mut session = open(&dir, &mut secrets)?;
            let dropped = session.discard_rejected(&edit_id)?;
            session.lock()?;
            if !dropped {
                bail!("{edit_id} is not a rejected edit of this replica");
            }
            say!(out, "discarded: {edit_id}");
        }
        Command::Signin => {
            let hub_pass = secrets.hub()?;
            let mut session = open(&dir, &mut secrets)?;
            session.sign_in(&hub_pass, Utc::now()).await?;
            session.lock()?;
            say!(out, "signed in");
        }
        Command::Reauthorise => {
            let hub_pass = secrets.hub()?;
            let new_pass = secrets.replica()?;
            let session = reauthorise(
                &dir,
                &hub_pass,
                &new_pass,
                Utc::now(),
                &HttpConfig::default(),
            )
            .await?;
            let d = session.device().clone();
            session.lock()?;
            say!(
                out,
                "re-authorised: device {} ({}) for {}; the replica has its new passphrase",
                d.device_id,
                d.device_name,
                d.username
            );
        }
        Command::Lock => {
            let status = match ReplicaFiles::new(&dir).status() {
                Ok(s) => s,
                Err(careshare_replica::ReplicaError::NotCreated) => {
                    return Err(ClientError::NotEnrolled(dir).into())
                }
                Err(e) => return Err(ClientError::from(e).into()),
            };
            say!(out, "locked: the replica in {} is closed", dir.display());
            if status.locked {
                say!(
                    out,
                    "passphrase lock: locked until the hub re-authorises this device"
                );
            }
            say!(out, "lease until: {}", status.lease_expires_at.to_rfc3339());
        }
    }
    Ok(out)
}

fn read_json(file: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

fn outcome_text(outcome: &Value) -> String {
    outcome
        .get("issue")
        .and_then(Value::as_array)
        .map(|issues| {
            issues
                .iter()
                .filter_map(|i| i.get("diagnostics").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn show(bar: &ProgressBar, p: SyncProgress) {
    let msg = match p {
        SyncProgress::Authenticating => "signing in".to_owned(),
        SyncProgress::Pulled {
            pages,
            changes,
            more,
        } => format!(
            "pulled {changes} changes in {pages} page(s){}",
            if more { ", more waiting" } else { "" }
        ),
        SyncProgress::Pushed { done, total } => format!("pushed {done} of {total} edit(s)"),
        SyncProgress::UploadedAudit { events } => format!("uploaded {events} audit event(s)"),
        SyncProgress::CheckingIn => "checking in".to_owned(),
    };
    bar.set_message(msg);
}

async fn sync(
    dir: &Path,
    secrets: &mut Secrets,
    page_size: u32,
    quiet: bool,
) -> anyhow::Result<SyncReport> {
    let pass = secrets.replica()?;
    let hub_pass = std::env::var(HUB_PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretString::new);
    let now = Utc::now();
    let mut session = match Session::open(dir, &pass, now) {
        Ok(s) => s,
        Err(ClientError::LeaseExpired { .. }) => {
            tracing::info!("the lease has expired; checking in with the hub");
            Session::check_in(dir, &pass, hub_pass.as_ref(), now, &HttpConfig::default()).await?
        }
        Err(e) => return Err(e.into()),
    };
    let options = SyncOptions {
        page_size,
        ..SyncOptions::default()
    };
    let bar = progress_bar(quiet);
    let mut on_progress = |p: SyncProgress| show(&bar, p);
    let mut result = session.sync(&options, now, &mut on_progress).await;
    if let (Err(ClientError::SignInRequired { .. }), Some(hub_pass)) = (&result, &hub_pass) {
        tracing::info!("the device's sign-in ran out; signing in again");
        session.sign_in(hub_pass, now).await?;
        result = session.sync(&options, now, &mut on_progress).await;
    }
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            session.lock()?;
            Ok(report)
        }
        Err(e @ ClientError::SignInRequired { .. }) => Err(anyhow::Error::new(e)
            .context("run `careshare signin` (or set CARESHARE_HUB_PASSPHRASE) and sync again")),
        Err(e) => Err(e.into()),
    }
}

fn print_report(out: &mut String, r: &SyncReport) {
    say!(
        out,
        "pulled: {} change(s) in {} page(s), {} stored, {} removed, {} patient(s) purged",
        r.changes,
        r.pages,
        r.upserted,
        r.removed,
        r.purged_patients
    );
    let p = &r.pushed;
    say!(
        out,
        "pushed: {} applied, {} merged, {} conflict(s), {} rejected, {} kept",
        p.applied,
        p.merged,
        p.conflicts,
        p.rejected,
        p.kept
    );
    say!(out, "audit: {} event(s) uploaded", r.audit_events);
    match r.lease_until {
        Some(l) => say!(out, "lease until: {}", l.to_rfc3339()),
        None => say!(out, "lease until: unchanged"),
    }
    match r.checkpoint {
        Some(c) => say!(out, "checkpoint: {c}"),
        None => say!(out, "checkpoint: none"),
    }
}

fn print_status(out: &mut String, s: &Status) {
    say!(out, "hub: {}", s.device.hub_url);
    say!(out, "user: {}", s.device.username);
    say!(
        out,
        "device: {} ({})",
        s.device.device_id,
        s.device.device_name
    );
    say!(out, "pending edits: {}", s.pending_edits);
    say!(out, "rejected edits: {}", s.rejected_edits);
    say!(out, "open conflicts: {}", s.open_conflicts);
    match s.last_sync {
        Some(t) => say!(out, "last sync: {}", t.to_rfc3339()),
        None => say!(out, "last sync: never"),
    }
    say!(out, "lease until: {}", s.lease_expires_at.to_rfc3339());
    say!(
        out,
        "checkpoint: {}",
        s.checkpoint.as_deref().unwrap_or("none")
    );
    say!(out, "resources: {}", s.resources);
    say!(out, "patients: {}", s.patients.len());
    for p in &s.patients {
        match p.data_as_of {
            Some(t) => say!(
                out,
                "patient {}: data as of {}",
                p.patient_id,
                t.to_rfc3339()
            ),
            None => say!(
                out,
                "patient {}: data as of (incomplete pull)",
                p.patient_id
            ),
        }
    }
}
