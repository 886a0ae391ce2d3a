//! The access policy applied to one request: every record a request reads or writes goes
//! through a [`Guard`], which loads the facts `careshare-policy` decides on (the caller's
//! role, organisation and teams; each patient's care links, objections and the caller's
//! break-glass grants) and asks it. The guard also remembers what it permitted, so the
//! request's AuditEvents can say which patients were touched and for what purpose.
//!
//! What the caller may not see is answered as if it did not exist.

use std::collections::{BTreeMap, HashMap};

use careshare_policy::{
    may_read, may_read_each, may_read_unlinked, may_write, may_write_unlinked, Decision,
    DenyReason, FactsError, OrgIndex, PatientAccess, PatientFacts, Purpose, ResourceFacts, Subject,
    WriteOp,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::{self, AccessError};
use crate::auth::Caller;
use crate::engine::{Authorize, EngineError};
use crate::store::{self, Conn, Store, StoreError, Stored, WriteTx};

/// Resource types whose writes change who may see a patient: after one is written, the
/// patient's facts are read again.
const LINKING_TYPES: [&str; 5] = [
    "Patient",
    "EpisodeOfCare",
    "CareTeam",
    "Encounter",
    "Consent",
];

/// A decision on one resource, with the patients whose record it is in.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub decision: Decision,
    pub patients: Vec<String>,
}

impl Verdict {
    pub fn is_permit(&self) -> bool {
        self.decision.is_permit()
    }
}

/// The policy for one caller, for the length of one request.
pub struct Guard {
    subject: Subject,
    purpose: Purpose,
    orgs: OrgIndex,
    grants: Vec<careshare_policy::BreakGlassGrant>,
    patients: HashMap<String, PatientFacts>,
    now: DateTime<Utc>,
    /// Patients whose records were permitted, with the purpose of each access (break-glass
    /// wins over treatment).
    touched: BTreeMap<String, Purpose>,
    /// The first refusal, for the audit trail.
    refused: Option<(Vec<String>, DenyReason)>,
    /// Whether anything not about a patient was permitted.
    touched_unlinked: bool,
}

impl Guard {
    /// The caller as the policy sees them, at `now`.
    pub async fn load(
        store: &Store,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<Guard, AccessError> {
        let (subject, orgs) = {
            let mut conn = store.reader().await?;
            let mut conn = Conn::Any(&mut conn);
            (
                access::subject(&mut conn, caller, now).await?,
                access::organisations(&mut conn).await?,
            )
        };
        let grants = access::grants_of(store, &caller.username).await?;
        Ok(Guard {
            purpose: subject.role.default_purpose(),
            subject,
            orgs,
            grants,
            patients: HashMap::new(),
            now,
            touched: BTreeMap::new(),
            refused: None,
            touched_unlinked: false,
        })
    }

    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The purpose the caller works under (treatment, privacy review, administration).
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Patients whose records were permitted so far, with the purpose of each access.
    pub fn touched(&self) -> &BTreeMap<String, Purpose> {
        &self.touched
    }

    /// Whether a record outside any patient's record was permitted.
    pub fn touched_unlinked(&self) -> bool {
        self.touched_unlinked
    }

    /// The first refusal so far: the patients concerned and the reason.
    pub fn refused(&self) -> Option<&(Vec<String>, DenyReason)> {
        self.refused.as_ref()
    }

    /// The caller's role, organisation and teams: when it changes, everything they were
    /// shown must be decided again.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.subject.role.code(),
            self.subject.organization_id,
            self.subject.practitioner_role_id,
            self.subject.team_ids.join(",")
        )
    }

    /// The caller's break-glass grants (any state).
    pub fn grants(&self) -> &[careshare_policy::BreakGlassGrant] {
        &self.grants
    }

    /// Whether the caller has a care link (or an active grant) to the patient now.
    pub async fn patient_open(
        &mut self,
        conn: &mut Conn<'_>,
        patient_id: &str,
    ) -> Result<bool, StoreError> {
        self.ensure_patient(conn, patient_id).await?;
        let facts = &self.patients[patient_id];
        let access = PatientAccess::new(&self.subject, facts, &self.grants, &self.orgs);
        Ok(access.relationship(self.now).is_some())
    }

    /// Whether patients' encounters can open a record to the caller (hospital clinicians).
    fn needs_encounters(&self) -> bool {
        self.subject.role == careshare_policy::Role::HospitalClinician
    }

    /// Loads the facts of many patients at once, for decisions about all of them.
    pub async fn preload_patients(
        &mut self,
        conn: &mut Conn<'_>,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|i| !self.patients.contains_key(*i))
            .cloned()
            .collect();
        let mut found = access::patient_facts_many(conn, &missing, self.needs_encounters()).await?;
        for id in missing {
            let facts = found.remove(&id).unwrap_or_else(|| PatientFacts::new(&id));
            self.patients.insert(id, facts);
        }
        Ok(())
    }

    async fn ensure_patient(&mut self, conn: &mut Conn<'_>, id: &str) -> Result<(), StoreError> {
        if !self.patients.contains_key(id) {
            let facts = access::patient_facts(conn, id, self.needs_encounters())
                .await?
                .unwrap_or_else(|| PatientFacts::new(id));
            self.patients.insert(id.to_string(), facts);
        }
        Ok(())
    }

    fn note(&mut self, patients: &[String], decision: Decision) -> Decision {
        match decision {
            Decision::Permit { purpose, .. } => {
                if patients.is_empty() {
                    self.touched_unlinked = true;
                }
                for p in patients {
                    let e = self.touched.entry(p.clone()).or_insert(purpose);
                    if purpose == Purpose::BreakGlass {
                        *e = purpose;
                    }
                }
            }
            Decision::Deny { reason } => {
                if self.refused.is_none() {
                    self.refused = Some((patients.to_vec(), reason));
                }
            }
        }
        decision
    }

    fn decide_read(&self, facts: &ResourceFacts) -> Decision {
        if !facts.kind.is_patient_record() {
            return may_read_unlinked(&self.subject, facts);
        }
        let accesses: Vec<PatientAccess<'_>> = facts
            .patients
            .iter()
            .filter_map(|p| self.patients.get(p))
            .map(|f| PatientAccess::new(&self.subject, f, &self.grants, &self.orgs))
            .collect();
        if accesses.len() == 1 {
            may_read(&self.subject, self.purpose, &accesses[0], facts, self.now)
        } else {
            let refs: Vec<&PatientAccess<'_>> = accesses.iter().collect();
            may_read_each(&self.subject, self.purpose, &refs, facts, self.now)
        }
    }

    /// May the caller see this resource? Nothing is recorded until [`Guard::record`].
    pub async fn check(
        &mut self,
        conn: &mut Conn<'_>,
        resource: &Value,
    ) -> Result<Verdict, StoreError> {
        self.check_facts(conn, ResourceFacts::from_json(resource))
            .await
    }

    /// [`Guard::check`] on a resource's facts, read beforehand: from its JSON, or as they
    /// were stored with its version ([`store::version_facts`]).
    pub async fn check_facts(
        &mut self,
        conn: &mut Conn<'_>,
        facts: Result<ResourceFacts, FactsError>,
    ) -> Result<Verdict, StoreError> {
        let Ok(facts) = facts else {
            return Ok(Verdict {
                decision: Decision::deny(DenyReason::UnsupportedType),
                patients: Vec::new(),
            });
        };
        for p in &facts.patients {
            self.ensure_patient(conn, p).await?;
        }
        Ok(Verdict {
            decision: self.decide_read(&facts),
            patients: facts.patients,
        })
    }

    /// [`Guard::check_facts`] for many records at once (a patient's whole record, say):
    /// each patient's access is worked out once for all of them.
    pub async fn check_many(
        &mut self,
        conn: &mut Conn<'_>,
        facts: Vec<Result<ResourceFacts, FactsError>>,
    ) -> Result<Vec<Verdict>, StoreError> {
        for f in facts.iter().flatten() {
            for p in &f.patients {
                self.ensure_patient(conn, p).await?;
            }
        }
        let mut accesses: HashMap<&str, PatientAccess<'_>> = HashMap::new();
        Ok(facts
            .into_iter()
            .map(|f| match f {
                Ok(facts) => Verdict {
                    decision: self.decide_read_with(&facts, &mut accesses),
                    patients: facts.patients,
                },
                Err(_) => Verdict {
                    decision: Decision::deny(DenyReason::UnsupportedType),
                    patients: Vec::new(),
                },
            })
            .collect())
    }

    /// [`Guard::decide_read`] with the patients' accesses kept in `accesses` for the next.
    fn decide_read_with<'g>(
        &'g self,
        facts: &ResourceFacts,
        accesses: &mut HashMap<&'g str, PatientAccess<'g>>,
    ) -> Decision {
        if !facts.kind.is_patient_record() {
            return may_read_unlinked(&self.subject, facts);
        }
        for p in &facts.patients {
            if let Some((id, f)) = self.patients.get_key_value(p) {
                accesses.entry(id.as_str()).or_insert_with(|| {
                    PatientAccess::new(&self.subject, f, &self.grants, &self.orgs)
                });
            }
        }
        let found: Vec<&PatientAccess<'_>> = facts
            .patients
            .iter()
            .filter_map(|p| accesses.get(p.as_str()))
            .collect();
        if found.len() == 1 {
            may_read(&self.subject, self.purpose, found[0], facts, self.now)
        } else {
            may_read_each(&self.subject, self.purpose, &found, facts, self.now)
        }
    }

    /// [`Guard::check`] for a stored version; None for a deletion.
    pub async fn check_stored(
        &mut self,
        conn: &mut Conn<'_>,
        s: &Stored,
    ) -> Result<Option<Verdict>, StoreError> {
        match s.resource()? {
            Some(v) => Ok(Some(self.check(conn, &v).await?)),
            None => Ok(None),
        }
    }

    /// Records a verdict on something returned to the caller (or refused them) for the
    /// request's audit trail.
    pub fn record(&mut self, v: &Verdict) {
        self.note(&v.patients, v.decision);
    }

    /// May the caller see the record `Type/id` as it stands (its current version, or its
    /// last version with content if it was deleted)? False if there is no such record.
    pub async fn record_visible(
        &mut self,
        conn: &mut Conn<'_>,
        res_type: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        match store::read_latest_content(conn, res_type, id).await? {
            Some(s) => Ok(self
                .check_stored(conn, &s)
                .await?
                .is_some_and(|v| v.decision.is_permit())),
            None => Ok(false),
        }
    }

    /// Completes `proposed` in the caller's name: `meta.source` names the caller's
    /// organisation. A `meta.source` that is not an Organization reference is refused,
    /// since in the shared record it says which organisation wrote the record.
    fn stamp(&self, proposed: &mut Value, current_source: Option<&str>) -> Result<(), String> {
        let Some(obj) = proposed.as_object_mut() else {
            return Ok(());
        };
        let own = format!("Organization/{}", self.subject.organization_id);
        let meta = obj
            .entry("meta")
            .or_insert_with(|| Value::Object(Default::default()));
        let Some(meta) = meta.as_object_mut() else {
            return Ok(()); // validation refuses a meta that is not an object
        };
        match meta.get("source") {
            None => {
                meta.insert("source".into(), Value::String(own));
                Ok(())
            }
            // A client sending back what it read: the new version is the writer's.
            Some(Value::String(s)) if Some(s.as_str()) == current_source => {
                meta.insert("source".into(), Value::String(own));
                Ok(())
            }
            Some(Value::String(s)) if careshare_policy::author_from_source(s).is_some() => Ok(()),
            Some(other) => Err(format!(
                "meta.source {other} is not an Organization reference: in Careshare it names the \
                 organisation that wrote the record (leave it out and the hub sets it to {own})"
            )),
        }
    }

    /// May the caller replace `current` with `proposed` (None: create / delete)?
    /// `proposed` is stamped with the caller's organisation first.
    pub async fn write(
        &mut self,
        conn: &mut Conn<'_>,
        current: Option<&Value>,
        proposed: Option<&mut Value>,
    ) -> Result<Result<Decision, String>, StoreError> {
        let current_facts = match current.map(ResourceFacts::from_json).transpose() {
            Ok(f) => f,
            Err(_) => return Ok(Ok(Decision::deny(DenyReason::UnsupportedType))),
        };
        let proposed_facts = match proposed {
            Some(p) => {
                let current_source = current
                    .and_then(|c| c.get("meta"))
                    .and_then(|m| m.get("source"))
                    .and_then(Value::as_str);
                if let Err(msg) = self.stamp(p, current_source) {
                    return Ok(Err(msg));
                }
                match ResourceFacts::from_json(p) {
                    Ok(f) => Some((f, p.clone())),
                    Err(_) => return Ok(Ok(Decision::deny(DenyReason::UnsupportedType))),
                }
            }
            None => None,
        };
        let op = match (&current_facts, &proposed_facts) {
            (None, Some((p, _))) => WriteOp::Create(p),
            (Some(c), Some((p, _))) => WriteOp::Update {
                current: c,
                proposed: p,
            },
            (Some(c), None) => WriteOp::Delete(c),
            (None, None) => return Ok(Ok(Decision::deny(DenyReason::UnsupportedType))),
        };
        let patient_record = current_facts
            .iter()
            .chain(proposed_facts.iter().map(|(f, _)| f))
            .any(|f| f.kind.is_patient_record());
        let mut patients: Vec<String> = current_facts
            .iter()
            .chain(proposed_facts.iter().map(|(f, _)| f))
            .flat_map(|f| f.patients.iter().cloned())
            .collect();
        patients.sort();
        patients.dedup();
        if !patient_record {
            let d = may_write_unlinked(&self.subject, self.purpose, op);
            return Ok(Ok(self.note(&[], d)));
        }
        let Some(patient) = patients.first().cloned() else {
            let d = Decision::deny(DenyReason::WrongPatient);
            return Ok(Ok(self.note(&[], d)));
        };
        self.ensure_patient(conn, &patient).await?;
        // Registering a patient: their own resource says who they are registered with.
        let new_patient = matches!(
            (&current_facts, &proposed_facts),
            (None, Some((f, _))) if f.resource_type == "Patient"
        );
        let facts = match &proposed_facts {
            Some((_, v)) if new_patient && self.patients[&patient].gp_organizations.is_empty() => {
                PatientFacts::from_resources(v, std::iter::empty())
                    .unwrap_or_else(|_| PatientFacts::new(&patient))
            }
            _ => self.patients[&patient].clone(),
        };
        let access = PatientAccess::new(&self.subject, &facts, &self.grants, &self.orgs);
        let d = may_write(&self.subject, self.purpose, &access, op, self.now);
        if d.is_permit() {
            let ty = proposed_facts
                .as_ref()
                .map(|(f, _)| f.resource_type.as_str())
                .or(current_facts.as_ref().map(|f| f.resource_type.as_str()))
                .unwrap_or_default();
            if LINKING_TYPES.contains(&ty) {
                for p in &patients {
                    self.patients.remove(p);
                }
            }
        }
        Ok(Ok(self.note(&patients, d)))
    }
}

fn forbidden(res_type: &str, id: &str, reason: DenyReason) -> EngineError {
    EngineError::Forbidden(format!("{res_type}/{id}: {}", reason.message()))
}

fn missing(res_type: &str, id: &str) -> EngineError {
    EngineError::NotFound(format!("{res_type}/{id} does not exist"))
}

impl Authorize for Guard {
    async fn write(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        current: Option<&Value>,
        proposed: Option<&mut Value>,
    ) -> Result<(), EngineError> {
        let mut conn = tx.conn().await?;
        // A record the caller cannot see is, to them, not there.
        if let Some(c) = current {
            let seen = self.check(&mut conn, c).await?;
            if !seen.decision.is_permit() {
                self.record(&seen);
                return Err(if proposed.is_none() {
                    missing(res_type, id)
                } else {
                    EngineError::Forbidden(format!(
                        "{res_type}/{id}: you may not write this record."
                    ))
                });
            }
        }
        match Guard::write(self, &mut conn, current, proposed).await? {
            Err(msg) => Err(EngineError::bad(careshare_fhir::IssueType::Value, msg)),
            Ok(Decision::Deny { reason }) => Err(forbidden(res_type, id, reason)),
            Ok(Decision::Permit { .. }) => Ok(()),
        }
    }

    async fn read(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        found: &Value,
    ) -> Result<(), EngineError> {
        let mut conn = tx.conn().await?;
        let seen = self.check(&mut conn, found).await?;
        self.record(&seen);
        if seen.decision.is_permit() {
            Ok(())
        } else {
            Err(missing(res_type, id))
        }
    }
}
