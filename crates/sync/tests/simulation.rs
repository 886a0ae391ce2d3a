//! Two devices and a hub exchanging serialized messages over an unreliable
//! link: responses are dropped or duplicated at random, edits race on both
//! devices and on the hub.

use std::collections::{BTreeMap, BTreeSet};

use careshare_sync::*;
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

const IDS: [&str; 3] = ["t0", "t1", "t2"];
const FIELDS: [&str; 2] = ["status", "priority"];
const VALUES: [&str; 3] = ["requested", "completed", "cancelled"];

fn wire<T: Serialize + DeserializeOwned>(message: &T) -> T {
    let text = serde_json::to_string(message).expect("serialize");
    serde_json::from_str(&text).expect("deserialize")
}

fn skeleton(id: &str) -> Value {
    json!({"resourceType": "Task", "id": id})
}

#[derive(Default)]
struct Hub {
    feed: Vec<Sequenced>,
    sequence: i64,
    /// Last version and live resource (`None`: deleted).
    current: BTreeMap<String, (i64, Option<Value>)>,
    history: BTreeMap<(String, i64), Option<Value>>,
    applied: BTreeMap<String, i64>,
    applications: BTreeMap<String, usize>,
}

impl Hub {
    fn store(&mut self, id: &str, resource: Option<Value>) -> i64 {
        let version = self.current.get(id).map_or(0, |(v, _)| *v) + 1;
        self.current
            .insert(id.to_string(), (version, resource.clone()));
        self.history
            .insert((id.to_string(), version), resource.clone());
        self.sequence += 1;
        let change = match resource {
            Some(resource) => Change::Upsert {
                resource_type: "Task".into(),
                id: id.into(),
                version,
                resource,
                patient: Some("p1".into()),
            },
            None => Change::Remove {
                resource_type: "Task".into(),
                id: id.into(),
                reason: RemovalReason::Deleted,
            },
        };
        self.feed.push(Sequenced {
            sequence: self.sequence,
            change,
        });
        version
    }

    fn push(&mut self, batch: &PushBatch) -> PushResult {
        let mut results = Vec::new();
        for edit in &batch.edits {
            let current = self
                .current
                .get(&edit.id)
                .and_then(|(v, r)| r.as_ref().map(|r| (*v, r.clone())));
            let base = edit
                .base_version
                .and_then(|b| self.history.get(&(edit.id.clone(), b)).cloned().flatten());
            let decision = hub_apply_edit(
                edit,
                current.as_ref().map(|(v, r)| (*v, r)),
                base.as_ref(),
                self.applied.get(&edit.client_edit_id).copied(),
            );
            let version = match &decision {
                EditDecision::Apply { resource } | EditDecision::ApplyMerged { resource } => {
                    let version = self.store(&edit.id, resource.clone());
                    self.applied.insert(edit.client_edit_id.clone(), version);
                    *self
                        .applications
                        .entry(edit.client_edit_id.clone())
                        .or_default() += 1;
                    version
                }
                _ => 0,
            };
            results.push(decision.into_result(edit.client_edit_id.clone(), version));
        }
        PushResult { results }
    }

    fn live(&self) -> BTreeMap<String, (i64, Value)> {
        self.current
            .iter()
            .filter_map(|(id, (v, r))| r.as_ref().map(|r| (id.clone(), (*v, r.clone()))))
            .collect()
    }
}

struct Client {
    name: &'static str,
    sync: ClientSync,
    store: BTreeMap<String, (i64, Value)>,
    outbox: Vec<Edit>,
    made: Vec<String>,
    done: BTreeSet<String>,
    conflicts: BTreeSet<String>,
    rejected: BTreeSet<String>,
}

impl Client {
    fn new(name: &'static str) -> Client {
        Client {
            name,
            sync: ClientSync::new(None, 2),
            store: BTreeMap::new(),
            outbox: Vec::new(),
            made: Vec::new(),
            done: BTreeSet::new(),
            conflicts: BTreeSet::new(),
            rejected: BTreeSet::new(),
        }
    }

    fn edit(&mut self, id: &str, field: &str, value: &str, delete: bool) {
        let client_edit_id = format!("{}-{}", self.name, self.made.len());
        let (base_version, resource) = match self.store.get(id) {
            Some((version, _)) if delete => (Some(*version), None),
            Some((version, stored)) => {
                let mut resource = stored.clone();
                resource[field] = json!(value);
                (Some(*version), Some(resource))
            }
            None => {
                let mut resource = skeleton(id);
                resource[field] = json!(value);
                (None, Some(resource))
            }
        };
        self.made.push(client_edit_id.clone());
        self.outbox.push(Edit {
            client_edit_id,
            resource_type: "Task".into(),
            id: id.into(),
            base_version,
            resource,
        });
    }

    fn push(&mut self, hub: &mut Hub, drop: bool, duplicate: bool) {
        let batch = wire(&self.sync.push_batch(&self.outbox, 2));
        let result = wire(&hub.push(&batch));
        if drop {
            return;
        }
        let copies = if duplicate { 2 } else { 1 };
        for _ in 0..copies {
            for action in self.sync.apply_push_result(&result) {
                match action {
                    OutboxAction::Keep { .. } => {}
                    OutboxAction::Remove { client_edit_id, .. } => {
                        self.take(&client_edit_id);
                        assert!(self.done.insert(client_edit_id), "answered twice");
                    }
                    OutboxAction::RecordConflict { client_edit_id, .. } => {
                        self.take(&client_edit_id);
                        assert!(self.conflicts.insert(client_edit_id), "answered twice");
                    }
                    OutboxAction::MarkRejected { client_edit_id, .. } => {
                        self.take(&client_edit_id);
                        assert!(self.rejected.insert(client_edit_id), "answered twice");
                    }
                }
            }
        }
    }

    fn take(&mut self, client_edit_id: &str) {
        let before = self.outbox.len();
        self.outbox.retain(|e| e.client_edit_id != client_edit_id);
        assert_eq!(
            self.outbox.len() + 1,
            before,
            "action for an edit not in the outbox"
        );
    }

    /// Pulls one page; returns whether more wait.
    fn pull(&mut self, hub: &Hub, drop: bool, duplicate: bool) -> bool {
        let request = wire(&self.sync.next_pull());
        let page = wire(&serve_pull(&hub.feed, &request));
        if drop {
            return true;
        }
        let effect = self.sync.apply_page(&page).expect("a fresh page applies");
        self.commit(&effect);
        if duplicate {
            match self.sync.apply_page(&page) {
                Ok(effect) => {
                    assert!(
                        page.changes.is_empty(),
                        "a repeated page with changes applied"
                    );
                    self.commit(&effect);
                }
                Err(ProtocolError::Stale(_)) => {}
                Err(other) => panic!("unexpected error for a repeated page: {other}"),
            }
        }
        effect.more
    }

    fn commit(&mut self, effect: &PageEffect) {
        assert!(effect.purges.is_empty());
        for removal in &effect.removals {
            self.store.remove(&removal.id);
        }
        for upsert in &effect.upserts {
            self.store
                .insert(upsert.id.clone(), (upsert.version, upsert.resource.clone()));
        }
        self.sync.committed(effect.checkpoint).expect("commit");
    }
}

#[derive(Clone, Debug)]
enum Op {
    ClientEdit {
        client: usize,
        id: usize,
        field: usize,
        value: usize,
        delete: bool,
    },
    HubEdit {
        id: usize,
        field: usize,
        value: usize,
        delete: bool,
    },
    Push {
        client: usize,
        drop: bool,
        duplicate: bool,
    },
    Pull {
        client: usize,
        drop: bool,
        duplicate: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..3usize, 0..2usize, 0..3usize, prop::bool::weighted(0.15)).prop_map(
            |(client, id, field, value, delete)| Op::ClientEdit { client, id, field, value, delete }
        ),
        1 => (0..3usize, 0..2usize, 0..3usize, prop::bool::weighted(0.15))
            .prop_map(|(id, field, value, delete)| Op::HubEdit { id, field, value, delete }),
        2 => (0..2usize, prop::bool::weighted(0.3), prop::bool::weighted(0.3))
            .prop_map(|(client, drop, duplicate)| Op::Push { client, drop, duplicate }),
        2 => (0..2usize, prop::bool::weighted(0.3), prop::bool::weighted(0.3))
            .prop_map(|(client, drop, duplicate)| Op::Pull { client, drop, duplicate }),
    ]
}

fn run(ops: &[Op]) -> (Hub, [Client; 2]) {
    let mut hub = Hub::default();
    let mut clients = [Client::new("a"), Client::new("b")];
    for op in ops {
        match *op {
            Op::ClientEdit {
                client,
                id,
                field,
                value,
                delete,
            } => clients[client].edit(IDS[id], FIELDS[field], VALUES[value], delete),
            Op::HubEdit {
                id,
                field,
                value,
                delete,
            } => {
                let live = hub.current.get(IDS[id]).and_then(|(_, r)| r.clone());
                match live {
                    Some(_) if delete => {
                        hub.store(IDS[id], None);
                    }
                    live => {
                        let mut resource = live.unwrap_or_else(|| skeleton(IDS[id]));
                        resource[FIELDS[field]] = json!(VALUES[value]);
                        hub.store(IDS[id], Some(resource));
                    }
                }
            }
            Op::Push {
                client,
                drop,
                duplicate,
            } => clients[client].push(&mut hub, drop, duplicate),
            Op::Pull {
                client,
                drop,
                duplicate,
            } => {
                clients[client].pull(&hub, drop, duplicate);
            }
        }
    }
    // Reconnect for good: push everything, then pull everything.
    for client in &mut clients {
        let mut rounds = 0;
        while !client.outbox.is_empty() {
            client.push(&mut hub, false, false);
            rounds += 1;
            assert!(rounds < 1000, "the outbox does not drain");
        }
    }
    for client in &mut clients {
        let mut rounds = 0;
        while client.pull(&hub, false, false) {
            rounds += 1;
            assert!(rounds < 1000, "the feed does not drain");
        }
    }
    (hub, clients)
}

fn check(hub: &Hub, clients: &[Client]) {
    for (id, count) in &hub.applications {
        assert_eq!(*count, 1, "edit {id} applied {count} times");
    }
    for client in clients {
        assert!(
            client.rejected.is_empty(),
            "rejected: {:?}",
            client.rejected
        );
        for id in &client.made {
            let applied = client.done.contains(id);
            let conflicted = client.conflicts.contains(id);
            assert!(
                applied ^ conflicted,
                "edit {id}: applied {applied}, conflict {conflicted}"
            );
            assert_eq!(
                applied,
                hub.applied.contains_key(id),
                "edit {id} hub/device disagree"
            );
        }
        assert_eq!(
            client.store,
            hub.live(),
            "device {} differs from the hub",
            client.name
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn edits_are_applied_once_or_conflict_and_replicas_converge(
        ops in prop::collection::vec(op(), 0..60)
    ) {
        let (hub, clients) = run(&ops);
        check(&hub, &clients);
    }
}

#[test]
fn concurrent_edits_of_different_elements_merge() {
    let ops = [
        Op::HubEdit {
            id: 0,
            field: 0,
            value: 0,
            delete: false,
        },
        Op::Pull {
            client: 0,
            drop: false,
            duplicate: false,
        },
        Op::Pull {
            client: 1,
            drop: false,
            duplicate: false,
        },
        Op::ClientEdit {
            client: 0,
            id: 0,
            field: 0,
            value: 1,
            delete: false,
        },
        Op::ClientEdit {
            client: 1,
            id: 0,
            field: 1,
            value: 2,
            delete: false,
        },
        Op::Push {
            client: 0,
            drop: false,
            duplicate: false,
        },
        Op::Push {
            client: 1,
            drop: true,
            duplicate: false,
        },
        Op::Push {
            client: 1,
            drop: false,
            duplicate: true,
        },
    ];
    let (hub, clients) = run(&ops);
    check(&hub, &clients);
    let live = hub.live();
    assert_eq!(live["t0"].1["status"], "completed");
    assert_eq!(live["t0"].1["priority"], "cancelled");
    assert_eq!(clients[1].done.len(), 1);
}

#[test]
fn concurrent_edits_of_one_element_conflict() {
    let ops = [
        Op::HubEdit {
            id: 0,
            field: 0,
            value: 0,
            delete: false,
        },
        Op::Pull {
            client: 0,
            drop: false,
            duplicate: false,
        },
        Op::Pull {
            client: 1,
            drop: false,
            duplicate: false,
        },
        Op::ClientEdit {
            client: 0,
            id: 0,
            field: 0,
            value: 1,
            delete: false,
        },
        Op::ClientEdit {
            client: 1,
            id: 0,
            field: 0,
            value: 2,
            delete: false,
        },
        Op::Push {
            client: 0,
            drop: false,
            duplicate: false,
        },
        Op::Push {
            client: 1,
            drop: false,
            duplicate: false,
        },
    ];
    let (hub, clients) = run(&ops);
    check(&hub, &clients);
    assert_eq!(hub.live()["t0"].1["status"], "completed");
    assert_eq!(clients[1].conflicts.len(), 1);
}
