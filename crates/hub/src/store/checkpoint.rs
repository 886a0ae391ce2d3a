//! On SQLite, the write-ahead log is copied back into the database (checkpointed) by a
//! task with a connection of its own, not by whichever write transaction filled it.
//!
//! SQLite's automatic checkpoint runs in the committing connection, after the commit: it
//! copies megabytes and syncs the file, 100–200 ms during a first sync's feed, and every
//! write queued behind that transaction (the feed's next chunk, the audit entry of a page
//! being served, a nurse's edit) waited for it. Here it runs beside them: a passive
//! checkpoint never blocks a writer or a reader, and copies only what no reader still
//! needs from the log (the rest at a later round).
//!
//! The automatic checkpoint stays as a backstop at [`BACKSTOP_PAGES`], far above what
//! one round lets the log grow by.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::StoreError;

/// How often the log is checkpointed. A round with nothing new to copy reads the log's
/// header and nothing else.
const EVERY: Duration = Duration::from_millis(200);

/// Log pages (4 KiB each) at which a committing connection checkpoints after all, should
/// this task fall behind: about 64 MiB, several seconds of the busiest writing.
pub(super) const BACKSTOP_PAGES: u32 = 16_384;

/// The running checkpoint task; dropped or [closed](Checkpointer::close), it stops after
/// its round in progress.
pub(super) struct Checkpointer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens the task's own connection to the database of `options` and starts it.
    pub(super) async fn start(options: &SqliteConnectOptions) -> Result<Checkpointer, StoreError> {
        let mut conn = SqliteConnection::connect_with(options).await?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    // Told to stop, or the store is gone.
                    _ = stopped.wait_for(|&s| s) => break,
                    () = tokio::time::sleep(EVERY) => {}
                }
                let done: Result<(i64, i64, i64), sqlx::Error> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut conn)
                        .await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "checkpoint of the write-ahead log failed");
                }
            }
            let _ = conn.close().await;
        });
        Ok(Checkpointer { stop, task })
    }

    /// Stops the task once its round in progress, if any, is done.
    pub(super) async fn close(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
