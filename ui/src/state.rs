//! The app's state and its reducer. Side effects (calls to the shell,
//! timers) live in `App` and `effects`; they report here as [`Action`]s.

use std::rc::Rc;

use careshare_view::api::{
    AppError, AppStatus, Caseload, ConflictItem, GrantView, PatientSummary, Phase,
};
use yew::Reducible;

use crate::clock::Clock;

/// Where the user is, once the replica is unlocked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Route {
    /// The caseload (home).
    #[default]
    Caseload,
    /// One patient's summary.
    Patient(String),
    /// Recording a visit for a patient.
    Visit(String),
    /// The conflicts inbox.
    Conflicts,
    /// Emergency access.
    BreakGlass,
}

impl Route {
    /// The patient the route is about, if any.
    pub fn patient_id(&self) -> Option<&str> {
        match self {
            Route::Patient(id) | Route::Visit(id) => Some(id),
            _ => None,
        }
    }
}

/// Something the user asked the shell to do (for busy flags and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Enrol,
    Unlock,
    Reauthorise,
    Lock,
    SyncNow,
    SignIn,
    RecordVisit,
    Resolve,
    BreakGlass,
}

/// Everything the screens show.
#[derive(Debug, Clone)]
pub struct State {
    /// The last `app_status` (None until the first answer).
    pub status: Option<AppStatus>,
    /// Why `app_status` failed, while it does.
    pub status_error: Option<AppError>,
    /// Now and the local offset (refreshed about once a minute).
    pub clock: Clock,
    /// The screen, when unlocked.
    pub route: Route,
    /// The caseload, once loaded.
    pub caseload: Option<Caseload>,
    pub caseload_error: Option<AppError>,
    /// The summary of the patient on screen.
    pub summary: Option<PatientSummary>,
    pub summary_error: Option<AppError>,
    /// Bumped to make the summary load again (after a visit is saved).
    pub summary_nonce: u32,
    /// Open conflicts, once loaded.
    pub conflicts: Option<Vec<ConflictItem>>,
    pub conflicts_error: Option<AppError>,
    /// Bumped to make the conflicts load again (after a resolution).
    pub conflicts_nonce: u32,
    /// The last conflict resolved (for a short confirmation).
    pub resolved: Option<i64>,
    /// The break-glass grant just given, while its patient is on its way.
    pub granted: Option<GrantView>,
    /// Bumped at each status poll while waiting for a granted patient.
    pub waiting_tick: u32,
    /// What the user asked for that is still running.
    pub busy: Vec<Op>,
    /// Why what the user asked for failed.
    pub errors: Vec<(Op, AppError)>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: None,
            status_error: None,
            clock: Clock::read(),
            route: Route::Caseload,
            caseload: None,
            caseload_error: None,
            summary: None,
            summary_error: None,
            summary_nonce: 0,
            conflicts: None,
            conflicts_error: None,
            conflicts_nonce: 0,
            resolved: None,
            granted: None,
            waiting_tick: 0,
            busy: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl State {
    /// The screen the shell says to show.
    pub fn phase(&self) -> Option<Phase> {
        self.status.as_ref().map(|s| s.phase)
    }

    /// Whether `op` is running.
    pub fn is_busy(&self, op: Op) -> bool {
        self.busy.contains(&op)
    }

    /// Why `op` last failed.
    pub fn error(&self, op: Op) -> Option<AppError> {
        self.errors
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, e)| e.clone())
    }

    /// The end of the last complete sync.
    pub fn last_sync(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.status.as_ref().and_then(|s| s.sync.last_sync)
    }

    fn forget_records(&mut self) {
        self.caseload = None;
        self.caseload_error = None;
        self.summary = None;
        self.summary_error = None;
        self.conflicts = None;
        self.conflicts_error = None;
        self.resolved = None;
        self.granted = None;
        self.route = Route::Caseload;
    }

    fn finish(&mut self, op: Op, error: Option<AppError>) {
        self.busy.retain(|o| *o != op);
        self.errors.retain(|(o, _)| *o != op);
        if let Some(error) = error {
            self.errors.push((op, error));
        }
    }
}

/// What happened.
#[derive(Debug)]
pub enum Action {
    /// `app_status` answered (with the clock read at the time).
    Status(AppStatus, Clock),
    /// `app_status` failed.
    StatusFailed(AppError),
    /// Go to a screen.
    Navigate(Route),
    CaseloadLoaded(Result<Caseload, AppError>),
    SummaryLoaded(String, Result<PatientSummary, AppError>),
    ConflictsLoaded(Result<Vec<ConflictItem>, AppError>),
    /// The user asked for `op`.
    Started(Op),
    /// `op` ended (with why it failed, if it did).
    Finished(Op, Option<AppError>),
    /// A visit was saved for this patient: back to the summary.
    VisitSaved(String),
    /// A conflict was resolved.
    Resolved(i64),
    /// Emergency access was granted; wait for the patient to arrive.
    Granted(GrantView),
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        match action {
            Action::Status(status, clock) => {
                let minute = |c: &Clock| c.now.timestamp() / 60;
                let waiting = self.granted.is_some();
                if self.status.as_ref() == Some(&status)
                    && self.status_error.is_none()
                    && minute(&self.clock) == minute(&clock)
                    && self.clock.offset == clock.offset
                    && !waiting
                {
                    // Nothing changed: no render.
                    return self;
                }
                let mut next = (*self).clone();
                let before = next.phase();
                if before != Some(status.phase) {
                    // A new screen: old errors and busy flags no longer apply.
                    next.errors.clear();
                    next.busy.retain(|op| {
                        matches!(op, Op::Enrol | Op::Unlock | Op::Reauthorise | Op::SignIn)
                    });
                    if status.phase != Phase::Unlocked {
                        // Locked, wiped…: keep no patient data in the page.
                        next.forget_records();
                    } else {
                        next.route = Route::Caseload;
                    }
                }
                if minute(&next.clock) != minute(&clock) || next.clock.offset != clock.offset {
                    next.clock = clock;
                }
                if waiting {
                    next.waiting_tick = next.waiting_tick.wrapping_add(1);
                }
                next.status = Some(status);
                next.status_error = None;
                Rc::new(next)
            }
            Action::StatusFailed(error) => {
                if self.status_error.as_ref() == Some(&error) {
                    return self;
                }
                let mut next = (*self).clone();
                next.status_error = Some(error);
                Rc::new(next)
            }
            Action::Navigate(route) => {
                let mut next = (*self).clone();
                if next.route.patient_id() != route.patient_id() {
                    next.summary_error = None;
                }
                if route != Route::Conflicts {
                    next.resolved = None;
                }
                if route != Route::BreakGlass {
                    next.granted = None;
                }
                next.errors.retain(|(op, _)| {
                    !matches!(op, Op::RecordVisit | Op::Resolve | Op::BreakGlass)
                });
                next.route = route;
                Rc::new(next)
            }
            Action::CaseloadLoaded(result) => {
                let mut next = (*self).clone();
                match result {
                    Ok(caseload) => {
                        // The patient granted by break-glass has arrived: open it.
                        if let Some(grant) = &next.granted {
                            if caseload
                                .patients
                                .iter()
                                .any(|p| p.patient_id == grant.patient_id)
                                && next.route == Route::BreakGlass
                            {
                                next.route = Route::Patient(grant.patient_id.clone());
                                next.granted = None;
                            }
                        }
                        next.caseload = Some(caseload);
                        next.caseload_error = None;
                    }
                    Err(e) => next.caseload_error = Some(e),
                }
                Rc::new(next)
            }
            Action::SummaryLoaded(id, result) => {
                if self.route.patient_id() != Some(id.as_str()) {
                    // The user has moved on.
                    return self;
                }
                let mut next = (*self).clone();
                match result {
                    Ok(summary) => {
                        next.summary = Some(summary);
                        next.summary_error = None;
                    }
                    Err(e) => next.summary_error = Some(e),
                }
                Rc::new(next)
            }
            Action::ConflictsLoaded(result) => {
                let mut next = (*self).clone();
                match result {
                    Ok(items) => {
                        next.conflicts = Some(items);
                        next.conflicts_error = None;
                    }
                    Err(e) => next.conflicts_error = Some(e),
                }
                Rc::new(next)
            }
            Action::Started(op) => {
                let mut next = (*self).clone();
                next.errors.retain(|(o, _)| *o != op);
                if !next.busy.contains(&op) {
                    next.busy.push(op);
                }
                if op == Op::Resolve {
                    next.resolved = None;
                }
                Rc::new(next)
            }
            Action::Finished(op, error) => {
                let mut next = (*self).clone();
                next.finish(op, error);
                Rc::new(next)
            }
            Action::VisitSaved(patient_id) => {
                let mut next = (*self).clone();
                next.finish(Op::RecordVisit, None);
                next.summary_nonce = next.summary_nonce.wrapping_add(1);
                next.route = Route::Patient(patient_id);
                Rc::new(next)
            }
            Action::Resolved(id) => {
                let mut next = (*self).clone();
                next.finish(Op::Resolve, None);
                next.resolved = Some(id);
                next.conflicts_nonce = next.conflicts_nonce.wrapping_add(1);
                Rc::new(next)
            }
            Action::Granted(grant) => {
                let mut next = (*self).clone();
                next.finish(Op::BreakGlass, None);
                next.granted = Some(grant);
                Rc::new(next)
            }
        }
    }
}
