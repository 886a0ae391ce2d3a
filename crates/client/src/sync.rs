//! One sync: pull, push, upload the audit chain, check in.
//!
//! 1. **Pull** with [`ClientSync`] until the hub has no more: each page's
//!    purges, removals, upserts and checkpoint are committed in one replica
//!    transaction ([`careshare_replica::Replica::apply_pull_page`]) before
//!    the protocol state moves on, so a sync killed at any point resumes from
//!    the last committed page.
//! 2. **Push** the outbox in batches; each [`OutboxAction`] becomes a replica
//!    operation (module `apply`). An unanswered batch leaves its edits
//!    queued; re-sending is safe because the hub applies each client edit id
//!    at most once. When the hub accepted anything, pull again to bring its
//!    versions.
//! 3. **Upload** the local audit chain from where the hub's copy ends, signed
//!    with the device key; a 409 means the hub's position moved, so ask
//!    again and resend from there.
//! 4. **Check in**: renew the offline lease with the hub's answer and record
//!    the sync as complete.

use std::collections::HashMap;

use careshare_replica::SecretString;
use careshare_replica::{EditState, AUDIT_GENESIS};
use careshare_sync::{ClientSync, OutboxAction, PullRequest, RawResource, ReducedPage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::apply::{apply_action, outbox_edits, parse_checkpoint, store_page, PushTally};
use crate::device_key::DeviceKey;
use crate::error::{ClientError, Result};
use crate::http::{AuditPosition, AuditRowBody, CallError, HubClient};
use crate::session::Session;

/// Tuning of one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// Changes asked for per pull page.
    pub page_size: u32,
    /// Edits per push batch.
    pub push_batch: usize,
    /// Audit rows per upload.
    pub audit_batch: usize,
}

impl Default for SyncOptions {
    /// 500 changes per page, 200 edits per batch, 500 audit rows per upload.
    fn default() -> Self {
        SyncOptions {
            page_size: 500,
            push_batch: 200,
            audit_batch: 500,
        }
    }
}

/// What a sync is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SyncProgress {
    /// Getting a device-bound access token.
    Authenticating,
    /// A page was committed.
    Pulled {
        /// Pages committed in this sync so far.
        pages: u64,
        /// Changes committed in this sync so far.
        changes: u64,
        /// Whether the hub has more.
        more: bool,
    },
    /// A push batch was answered.
    Pushed {
        /// Edits answered so far.
        done: usize,
        /// Edits to send in this sync.
        total: usize,
    },
    /// Audit rows were uploaded.
    UploadedAudit {
        /// Rows uploaded in this sync so far.
        events: usize,
    },
    /// Renewing the offline lease.
    CheckingIn,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Pages committed.
    pub pages: u64,
    /// Changes committed.
    pub changes: u64,
    /// Patients purged from the replica.
    pub purged_patients: u64,
    /// Resources stored.
    pub upserted: u64,
    /// Resources removed.
    pub removed: u64,
    /// How the pushed edits went.
    pub pushed: PushTally,
    /// Audit rows uploaded.
    pub audit_events: usize,
    /// The new end of the offline lease.
    pub lease_until: Option<DateTime<Utc>>,
    /// The committed pull checkpoint after the sync.
    pub checkpoint: Option<i64>,
}

/// Largest number of times the audit upload asks the hub for its position
/// again after a 409 before giving up.
const AUDIT_ROUNDS: usize = 3;

impl Session {
    /// Syncs with the hub: pull, push, audit upload, check-in (see the
    /// module docs). `now` stamps what is recorded (freshness, the last sync,
    /// the lease check); `progress` is told of each step.
    ///
    /// On [`ClientError::Wiped`] the replica is gone and the session is dead.
    /// Any other error leaves the replica consistent: committed pages stay
    /// committed, unanswered edits stay queued; sync again to resume.
    pub async fn sync(
        &mut self,
        options: &SyncOptions,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(SyncProgress) + Send),
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        // What a sync writes can always be had again from the hub (pages are pulled again
        // from the committed checkpoint, an unrecorded completion is answered "already
        // applied"), so its commits skip the disk flush; the sync's last commit flushes them
        // all. The nurse's own edits are always flushed as they are made.
        self.replica_mut()?.relax_durability(true)?;
        let result = self.sync_steps(options, now, progress, &mut report).await;
        if let Ok(replica) = self.replica_mut() {
            replica.relax_durability(false)?;
        }
        result?;
        let replica = self.replica_mut()?;
        replica.set_last_sync(now)?;
        report.checkpoint = parse_checkpoint(replica.pull_checkpoint()?)?.map(|c| c.sequence());
        Ok(report)
    }

    async fn sync_steps(
        &mut self,
        options: &SyncOptions,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(SyncProgress) + Send),
        report: &mut SyncReport,
    ) -> Result<()> {
        progress(SyncProgress::Authenticating);
        self.access_token(now).await?;
        self.pull_all(options, now, progress, report).await?;
        let accepted = self.push_outbox(options, now, progress, report).await?;
        if accepted {
            self.pull_all(options, now, progress, report).await?;
        }
        self.upload_audit(options, now, progress, report).await?;
        progress(SyncProgress::CheckingIn);
        let lease = self
            .with_access(now, |hub, token| async move { hub.checkin(&token).await })
            .await?;
        let replica = self.replica_mut()?;
        if lease > now {
            replica.renew_lease(lease, now)?;
            report.lease_until = Some(lease);
        } else {
            tracing::warn!("the hub's lease ({lease}) is already over; the lease was not renewed");
        }
        Ok(())
    }

    /// Pulls pages until the hub has no more, committing each with its checkpoint. While
    /// a page that says more changes wait is being committed, the next one is already
    /// asked for and reduced ([`ClientSync::prefetch_pull`]: a pull acknowledges nothing);
    /// it is used only once that commit succeeded.
    async fn pull_all(
        &mut self,
        options: &SyncOptions,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(SyncProgress) + Send),
        report: &mut SyncReport,
    ) -> Result<()> {
        let checkpoint = parse_checkpoint(self.replica()?.pull_checkpoint()?)?;
        let mut state = ClientSync::new(checkpoint, options.page_size);
        let mut prefetched: Option<Prefetch> = None;
        loop {
            let request = state.next_pull();
            let page = match prefetched.take() {
                Some(p) => p.answer(&request).await,
                None => None,
            };
            let page = match page {
                Some(page) => page,
                None => ReducedPage::new(
                    &self
                        .with_access(now, |hub, token| {
                            let request = request.clone();
                            async move { hub.pull(&token, &request).await }
                        })
                        .await?,
                ),
            };
            if page.wipe() {
                return Err(self.wipe());
            }
            let changes = page.changes() as u64;
            let effect = state.accept(page)?;
            if let Some(next) = state.prefetch_pull() {
                // A token that cannot be had now is asked for again by the next pull.
                if let Ok(token) = self.access_token(now).await {
                    prefetched = Some(Prefetch::start(self.hub.clone(), token, next));
                }
            }
            let applied = store_page(self.replica_mut()?, &mut state, &effect, now)?;
            if prefetched.as_ref().is_some_and(|p| !p.answer.is_finished()) {
                // The next page is not here yet: copy the log back into the database
                // meanwhile rather than after some later commit.
                self.replica()?.checkpoint()?;
            }
            report.pages += 1;
            report.changes += changes;
            report.purged_patients += effect.purges.len() as u64;
            report.upserted += applied.upserted as u64;
            report.removed += (applied.removed + applied.purged_resources) as u64;
            if !applied.kept_outbox_edits.is_empty() {
                tracing::info!(
                    "{} queued edit(s) of purged patients stay queued for the hub to decide",
                    applied.kept_outbox_edits.len()
                );
            }
            progress(SyncProgress::Pulled {
                pages: report.pages,
                changes: report.changes,
                more: effect.more,
            });
            if !effect.more {
                return Ok(());
            }
        }
    }

    /// Pushes the outbox; returns whether the hub accepted any edit.
    async fn push_outbox(
        &mut self,
        options: &SyncOptions,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(SyncProgress) + Send),
        report: &mut SyncReport,
    ) -> Result<bool> {
        let pending = self.replica()?.pending_edits()?;
        let mut queue = outbox_edits(&pending)?;
        let by_id: HashMap<String, _> = pending
            .into_iter()
            .map(|p| (p.edit.client_edit_id.clone(), p))
            .collect();
        let total = queue.len();
        let mut state = ClientSync::new(None, 1);
        let mut done = 0;
        while !queue.is_empty() {
            let batch = state.push_batch(&queue, options.push_batch);
            self.replica_mut()?.set_edits_state(
                batch.edits.iter().map(|e| e.client_edit_id.as_str()),
                EditState::Sent,
            )?;
            let result = self
                .with_access(now, |hub, token| {
                    let batch = batch.clone();
                    async move { hub.push(&token, &batch).await }
                })
                .await?;
            let replica = self.replica_mut()?;
            let mut answered = Vec::new();
            for action in &state.apply_push_result(&result) {
                if apply_action(replica, action, &by_id, &mut report.pushed, now)? {
                    answered.push(action_id(action).to_owned());
                }
            }
            if answered.is_empty() {
                // The hub answered none of the batch: keep everything for the
                // next sync rather than resend in a loop.
                break;
            }
            queue.retain(|e| !answered.contains(&e.client_edit_id));
            done += answered.len();
            progress(SyncProgress::Pushed { done, total });
        }
        // Whatever is still queued was not answered: it is sent again next time.
        report.pushed.kept = queue.len();
        Ok(report.pushed.applied + report.pushed.merged > 0)
    }

    async fn upload_audit(
        &mut self,
        options: &SyncOptions,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(SyncProgress) + Send),
        report: &mut SyncReport,
    ) -> Result<()> {
        self.replica()?.verify_audit()?;
        for _ in 0..AUDIT_ROUNDS {
            let mut position = self
                .with_access(
                    now,
                    |hub, token| async move { hub.audit_position(&token).await },
                )
                .await?;
            self.check_audit_position(&position)?;
            loop {
                let rows = self
                    .replica()?
                    .audit_after(position.next_seq - 1, options.audit_batch.max(1))?;
                let Some(last) = rows.last() else {
                    if let Some((seq, hash)) = self.replica()?.audit_head()? {
                        self.replica_mut()?.set_audit_sent(seq, &hash)?;
                    }
                    return Ok(());
                };
                let (last_seq, last_hash) = (last.seq, last.hash.clone());
                let mut events = Vec::with_capacity(rows.len());
                for row in rows {
                    let event: Value = serde_json::from_str(&row.event).map_err(|_| {
                        ClientError::AuditMismatch(format!("audit row {} is not JSON", row.seq))
                    })?;
                    // The hub hashes the compact serialisation of `event`.
                    if serde_json::to_string(&event).ok().as_deref() != Some(row.event.as_str()) {
                        return Err(ClientError::AuditMismatch(format!(
                            "audit row {} is not in compact JSON form",
                            row.seq
                        )));
                    }
                    events.push(AuditRowBody {
                        seq: row.seq,
                        recorded_at: row.recorded_at,
                        event,
                        prev_hash: row.prev_hash,
                        hash: row.hash,
                    });
                }
                let signature = {
                    let device = self
                        .replica()?
                        .device()?
                        .ok_or_else(|| ClientError::NotEnrolled(self.dir.clone()))?;
                    DeviceKey::load(&device.signing_key)?.sign_audit_head(&last_hash)
                };
                let events = std::sync::Arc::new(events);
                let sent = self
                    .with_access(now, |hub, token| {
                        let events = events.clone();
                        let signature = signature.clone();
                        async move { hub.upload_audit(&token, &events, &signature).await }
                    })
                    .await;
                match sent {
                    Ok(next) => {
                        if next.next_seq != last_seq + 1 || next.head != last_hash {
                            return Err(ClientError::AuditMismatch(format!(
                                "the hub took rows up to {} but says its copy ends at {}",
                                last_seq,
                                next.next_seq - 1
                            )));
                        }
                        self.replica_mut()?.set_audit_sent(last_seq, &last_hash)?;
                        report.audit_events += events.len();
                        progress(SyncProgress::UploadedAudit {
                            events: report.audit_events,
                        });
                        position = next;
                    }
                    Err(ClientError::Hub { status: 409, .. }) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Err(ClientError::AuditMismatch(
            "the hub kept refusing the audit upload".into(),
        ))
    }

    /// The hub's copy must be a prefix of the local chain.
    fn check_audit_position(&self, position: &AuditPosition) -> Result<()> {
        let replica = self.replica()?;
        if position.next_seq < 1 {
            return Err(ClientError::BadResponse(format!(
                "audit position {} is not a sequence number",
                position.next_seq
            )));
        }
        let held = position.next_seq - 1;
        let expected = if held == 0 {
            Some(AUDIT_GENESIS.to_owned())
        } else {
            replica.audit_hash_at(held)?
        };
        match expected {
            Some(hash) if hash == position.head => Ok(()),
            Some(_) => Err(ClientError::AuditMismatch(format!(
                "the hub's copy of row {held} differs from this device's"
            ))),
            None => Err(ClientError::AuditMismatch(format!(
                "the hub holds {held} rows but this device has fewer"
            ))),
        }
    }
}

/// A pull sent ahead, while the page before it is committed; its answer is reduced
/// ([`ReducedPage::new`]) there too. Dropping it cancels it.
struct Prefetch {
    request: PullRequest,
    answer: tokio::task::JoinHandle<std::result::Result<ReducedPage<RawResource>, CallError>>,
}

impl Prefetch {
    fn start(hub: HubClient, token: SecretString, request: PullRequest) -> Prefetch {
        let sent = request.clone();
        Prefetch {
            request,
            answer: tokio::spawn(async move {
                hub.pull(&token, &sent)
                    .await
                    .map(|page| ReducedPage::new(&page))
            }),
        }
    }

    /// The page, if it answers `request` (the pull due now). Any failure gives None: the
    /// pull is then sent again the ordinary way, which retries and handles the hub's
    /// instructions.
    async fn answer(mut self, request: &PullRequest) -> Option<ReducedPage<RawResource>> {
        if &self.request != request {
            return None;
        }
        match (&mut self.answer).await {
            Ok(Ok(page)) => Some(page),
            _ => None,
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.answer.abort();
    }
}

fn action_id(action: &OutboxAction) -> &str {
    match action {
        OutboxAction::Remove { client_edit_id, .. }
        | OutboxAction::Keep { client_edit_id }
        | OutboxAction::RecordConflict { client_edit_id, .. }
        | OutboxAction::MarkRejected { client_edit_id, .. } => client_edit_id,
    }
}
