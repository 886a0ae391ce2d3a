//! The calls to the shell, each reporting to the reducer.

use careshare_view::api::{
    self as cmd, AppError, AppStatus, BreakGlassArgs, BreakGlassRequest, Caseload, ConflictChoice,
    ConflictItem, EnrolArgs, EnrolRequest, GrantView, PatientArgs, PatientSummary, ReauthoriseArgs,
    RecordVisitArgs, ResolveArgs, SignInArgs, UnlockArgs, VisitForm, VisitSaved,
};
use wasm_bindgen_futures::spawn_local;
use yew::UseReducerDispatcher;

use crate::api::{call, call0};
use crate::clock::Clock;
use crate::state::{Action, Op, State};

/// The reducer's dispatcher.
pub type Dispatch = UseReducerDispatcher<State>;

/// Asks where the app stands. `done` runs when the answer is in.
pub fn poll_status(dispatch: Dispatch, done: impl FnOnce() + 'static) {
    spawn_local(async move {
        refresh_status(&dispatch).await;
        done();
    });
}

async fn refresh_status(dispatch: &Dispatch) {
    match call0::<AppStatus>(cmd::APP_STATUS).await {
        Ok(status) => dispatch.dispatch(Action::Status(status, Clock::read())),
        Err(e) => dispatch.dispatch(Action::StatusFailed(e)),
    }
}

/// Runs `op`: busy while it runs, then the new status or the error.
fn status_op(
    dispatch: Dispatch,
    op: Op,
    call: impl std::future::Future<Output = Result<AppStatus, AppError>> + 'static,
) {
    dispatch.dispatch(Action::Started(op));
    spawn_local(async move {
        match call.await {
            Ok(status) => {
                dispatch.dispatch(Action::Status(status, Clock::read()));
                dispatch.dispatch(Action::Finished(op, None));
            }
            Err(e) => {
                // The status may have moved too (attempts left, lockout).
                refresh_status(&dispatch).await;
                dispatch.dispatch(Action::Finished(op, Some(e)));
            }
        }
    });
}

/// First run: enrol this device.
pub fn enrol(dispatch: Dispatch, request: EnrolRequest) {
    let args = EnrolArgs { request };
    status_op(
        dispatch,
        Op::Enrol,
        async move { call(cmd::ENROL, &args).await },
    );
}

/// Unlocks the replica.
pub fn unlock(dispatch: Dispatch, passphrase: String, hub_passphrase: Option<String>) {
    let args = UnlockArgs {
        passphrase,
        hub_passphrase,
    };
    status_op(dispatch, Op::Unlock, async move {
        call(cmd::UNLOCK, &args).await
    });
}

/// Re-authorises a locked-out device: the hub passphrase, then the new
/// passphrase for this device.
pub fn reauthorise(dispatch: Dispatch, hub_passphrase: String, passphrase: String) {
    let args = ReauthoriseArgs {
        hub_passphrase,
        passphrase,
    };
    status_op(dispatch, Op::Reauthorise, async move {
        call(cmd::REAUTHORISE, &args).await
    });
}

/// Signs in to the hub again, then syncs (what was waiting for it).
pub fn sign_in(dispatch: Dispatch, hub_passphrase: String) {
    let args = SignInArgs { hub_passphrase };
    status_op(dispatch, Op::SignIn, async move {
        let status: AppStatus = call(cmd::SIGN_IN, &args).await?;
        drop(args);
        // A no-op when a sync is already running.
        Ok(call0(cmd::SYNC_NOW).await.unwrap_or(status))
    });
}

/// Locks the replica now.
pub fn lock_now(dispatch: Dispatch) {
    status_op(dispatch, Op::Lock, call0(cmd::LOCK_NOW));
}

/// Starts a sync.
pub fn sync_now(dispatch: Dispatch) {
    status_op(dispatch, Op::SyncNow, call0(cmd::SYNC_NOW));
}

/// Restarts the shell's idle timer.
pub fn touch() {
    spawn_local(async {
        // Nothing to show if it fails: the next status poll tells the story.
        let _ = call0::<()>(cmd::TOUCH).await;
    });
}

/// Loads the caseload.
pub fn load_caseload(dispatch: Dispatch) {
    spawn_local(async move {
        let result = call0::<Caseload>(cmd::CASELOAD).await;
        dispatch.dispatch(Action::CaseloadLoaded(result));
    });
}

/// Loads one patient's summary.
pub fn load_summary(dispatch: Dispatch, patient_id: String) {
    spawn_local(async move {
        let args = PatientArgs {
            patient_id: patient_id.clone(),
        };
        let result = call::<_, PatientSummary>(cmd::PATIENT_SUMMARY, &args).await;
        dispatch.dispatch(Action::SummaryLoaded(patient_id, result));
    });
}

/// Loads the open conflicts.
pub fn load_conflicts(dispatch: Dispatch) {
    spawn_local(async move {
        let result = call0::<Vec<ConflictItem>>(cmd::CONFLICTS).await;
        dispatch.dispatch(Action::ConflictsLoaded(result));
    });
}

/// Saves a visit, then goes back to the summary.
pub fn record_visit(dispatch: Dispatch, visit: VisitForm) {
    dispatch.dispatch(Action::Started(Op::RecordVisit));
    spawn_local(async move {
        let patient_id = visit.patient_id.clone();
        let args = RecordVisitArgs { visit };
        match call::<_, VisitSaved>(cmd::RECORD_VISIT, &args).await {
            Ok(_) => {
                dispatch.dispatch(Action::VisitSaved(patient_id));
                // The pending count in the sync bar.
                refresh_status(&dispatch).await;
            }
            Err(e) => dispatch.dispatch(Action::Finished(Op::RecordVisit, Some(e))),
        }
    });
}

/// Resolves a conflict.
pub fn resolve(dispatch: Dispatch, id: i64, choice: ConflictChoice) {
    dispatch.dispatch(Action::Started(Op::Resolve));
    spawn_local(async move {
        let args = ResolveArgs { id, choice };
        match call::<_, AppStatus>(cmd::RESOLVE_CONFLICT, &args).await {
            Ok(status) => {
                dispatch.dispatch(Action::Status(status, Clock::read()));
                dispatch.dispatch(Action::Resolved(id));
            }
            Err(e) => dispatch.dispatch(Action::Finished(Op::Resolve, Some(e))),
        }
    });
}

/// Asks for emergency access, then syncs so the patient arrives.
pub fn break_glass(dispatch: Dispatch, request: BreakGlassRequest) {
    dispatch.dispatch(Action::Started(Op::BreakGlass));
    spawn_local(async move {
        let args = BreakGlassArgs { request };
        match call::<_, GrantView>(cmd::BREAK_GLASS, &args).await {
            Ok(grant) => {
                dispatch.dispatch(Action::Granted(grant));
                // Bring the record to the device (a no-op if a sync runs).
                if let Ok(status) = call0::<AppStatus>(cmd::SYNC_NOW).await {
                    dispatch.dispatch(Action::Status(status, Clock::read()));
                }
            }
            Err(e) => dispatch.dispatch(Action::Finished(Op::BreakGlass, Some(e))),
        }
    });
}
