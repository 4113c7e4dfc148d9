//! A person's record edit (`cutover record add|set|delete`, the API's
//! record changes) as an UPDATE, applied strictly: where RFC 2136 lets a
//! wire UPDATE drop a change silently (a CNAME beside data, the apex SOA or
//! NS deleted…), a person who asked for the change gets an error that says
//! why it cannot be made and the way out.
//!
//! ```text
//!  Edit { action, name, type, data, ttl, replace }
//!     ──Edit::changes(&zone)──▶ [Change]       (set = delete RRset + add; --replace also
//!                                               deletes what a CNAME cannot stand beside)
//!     ──update::apply_noting (the operator's policy: whole zone, no caps)
//!     ──▶ Outcome, or EditError::Ignored naming the conflict (nothing applied)
//!  [Edit] (a batch: `record apply`, PATCH rrsets) ──apply_batch──▶ the same, in one
//!     UPDATE, the refusal naming the edit to blame (BatchError::index)
//! ```
//!
//! Pure: the zone and the clock are passed in; the caller writes the diff.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use cutover_zone::{zonefile, Name, Rdata, Record, RecordType, Zone};

use super::apply::{apply_noting, Ignored, Outcome, UpdateError};
use super::message::{Change, Update};
use super::policy::{Policy, Prefix, Rule};

/// TTL of a new RRset when none is given and the RRset does not exist.
pub const DEFAULT_TTL: u32 = 3600;

/// What an edit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add one record to its RRset.
    Add,
    /// Replace the RRset with one record.
    Set,
    /// Delete the RRset, or only the record with the given data.
    Delete,
}

/// One record edit, parsed and checked for form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// What to do.
    pub action: Action,
    /// The owner, absolute and inside the zone.
    pub name: Name,
    /// The type.
    pub rtype: RecordType,
    /// The data: required to add or set; for a delete, only that record.
    pub rdata: Option<Rdata>,
    /// The TTL asked for (default: the RRset's, else [`DEFAULT_TTL`]).
    pub ttl: Option<u32>,
    /// Swap a CNAME for data or data for a CNAME in the same change: the
    /// data the new record cannot stand beside is deleted first.
    pub replace: bool,
}

/// Why an edit was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A name, type or data that does not parse (the words say which).
    #[error("{0}")]
    Invalid(String),
    /// Add or set without data.
    #[error("data is required to add or set a record")]
    MissingData,
    /// A delete of a record that is not there.
    #[error("{name} has no {rtype} record with data {data}")]
    NoSuchRecord {
        /// The owner.
        name: Name,
        /// The type.
        rtype: RecordType,
        /// The data asked for, in zone-file form.
        data: String,
    },
    /// A delete of an RRset that is not there.
    #[error("{name} has no {rtype} records")]
    NoSuchRrset {
        /// The owner.
        name: Name,
        /// The type.
        rtype: RecordType,
    },
    /// A delete of every RRset at a name that owns none.
    #[error("{name} has no records")]
    NoSuchName {
        /// The owner.
        name: Name,
    },
    /// The zone's rules drop the change: nothing was applied.
    #[error("not changed: {ignored}; {way_out}")]
    Ignored {
        /// What the rules say.
        ignored: Ignored,
        /// What the person can do instead.
        way_out: String,
    },
    /// The update path refused it (the zone would be invalid…).
    #[error(transparent)]
    Refused(#[from] UpdateError),
}

/// The address the operator's edits are attributed to in the policy.
const OPERATOR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The operator's policy: the whole zone, no caps.
pub fn operator_policy(origin: &Name) -> Policy {
    Policy {
        keys: Vec::new(),
        unsigned: vec![(Prefix::host(OPERATOR), Rule::whole_zone(origin.clone()))],
        max_records: usize::MAX,
        max_rrset: usize::MAX,
    }
}

impl Edit {
    /// An edit from a person's words: the owner ("@" the apex, "x." absolute,
    /// else relative to `origin`), the type mnemonic (or TYPEnnn) and the
    /// data in zone-file form (empty: none).
    pub fn parse(
        action: Action,
        owner: &str,
        rtype: &str,
        data: &str,
        origin: &Name,
    ) -> Result<Edit, EditError> {
        let name = owner_name(owner, origin)?;
        let rtype = record_type(rtype)?;
        let data = data.trim();
        let rdata =
            match data.is_empty() {
                true => None,
                false => Some(zonefile::rdata_from_text(rtype, data, origin).map_err(|e| {
                    EditError::Invalid(format!("invalid {rtype} data {data:?}: {e}"))
                })?),
            };
        if rdata.is_none() && action != Action::Delete {
            return Err(EditError::MissingData);
        }
        Ok(Edit {
            action,
            name,
            rtype,
            rdata,
            ttl: None,
            replace: false,
        })
    }

    /// The UPDATE changes of this edit against the zone as it is.
    pub fn changes(&self, zone: &Zone) -> Result<Vec<Change>, EditError> {
        let (name, rtype) = (&self.name, self.rtype);
        let ttl = self
            .ttl
            .or(zone.get(name, rtype).map(|set| set.ttl))
            .unwrap_or(DEFAULT_TTL);
        let mut changes = Vec::new();
        match (self.action, &self.rdata) {
            (Action::Add | Action::Set, None) => return Err(EditError::MissingData),
            (_, Some(_)) if rtype == RecordType::ANY => {
                return Err(EditError::Invalid(
                    "ANY names every type of a name: only a delete without data takes it".into(),
                ))
            }
            (Action::Add | Action::Set, Some(rdata)) => {
                if self.replace {
                    changes.extend(self.displaced(zone));
                }
                if self.action == Action::Set {
                    changes.push(Change::DeleteRrset {
                        name: name.clone(),
                        rtype,
                    });
                }
                changes.push(Change::Add(Record {
                    name: name.clone(),
                    ttl,
                    rdata: rdata.clone(),
                }));
            }
            (Action::Delete, Some(rdata)) => {
                if !zone.get(name, rtype).is_some_and(|set| set.contains(rdata)) {
                    return Err(EditError::NoSuchRecord {
                        name: name.clone(),
                        rtype,
                        data: data_text(name, rdata),
                    });
                }
                changes.push(Change::DeleteRecord {
                    name: name.clone(),
                    rdata: rdata.clone(),
                });
            }
            (Action::Delete, None) if rtype == RecordType::ANY => {
                if zone.node(name).is_none() {
                    return Err(EditError::NoSuchName { name: name.clone() });
                }
                changes.push(Change::DeleteName { name: name.clone() });
            }
            (Action::Delete, None) => {
                if zone.get(name, rtype).is_none() {
                    return Err(EditError::NoSuchRrset {
                        name: name.clone(),
                        rtype,
                    });
                }
                changes.push(Change::DeleteRrset {
                    name: name.clone(),
                    rtype,
                });
            }
        }
        Ok(changes)
    }

    /// With `replace`: the deletes of what the new record cannot stand
    /// beside (a CNAME for data; every other type but DNSSEC's for a CNAME).
    fn displaced(&self, zone: &Zone) -> Vec<Change> {
        let Some(node) = zone.node(&self.name) else {
            return Vec::new();
        };
        let dnssec = |t: RecordType| matches!(t, RecordType::RRSIG | RecordType::NSEC);
        node.rrsets()
            .map(|(rtype, _)| rtype)
            .filter(|t| match self.rtype {
                RecordType::CNAME => *t != RecordType::CNAME && !dnssec(*t),
                other if dnssec(other) => false,
                _ => *t == RecordType::CNAME,
            })
            .map(|rtype| Change::DeleteRrset {
                name: self.name.clone(),
                rtype,
            })
            .collect()
    }

    /// What a person can do about a change the rules dropped.
    fn way_out(&self, ignored: &Ignored) -> String {
        let name = &self.name;
        match ignored {
            Ignored::DataBesideCname { .. } => format!(
                "delete the CNAME at {name} first, or replace it with this {} record in one change (`--replace`; in the API `\"replace\": true`)",
                self.rtype
            ),
            Ignored::CnameBesideData { types, .. } => format!(
                "delete the other data at {name} ({}) first, or replace it with the CNAME in one change (`--replace`; in the API `\"replace\": true`)",
                types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            Ignored::ApexRrset { rtype, .. } => format!(
                "to change the apex {rtype} records, set or add the new ones (`record set` replaces them in one change)"
            ),
            Ignored::SoaDelete { .. } => {
                "a zone always has its SOA record; change it with `record set`".to_owned()
            }
            Ignored::LastApexNs { .. } => {
                "add the new NS record first, then delete this one, or `record set` the NS RRset".to_owned()
            }
            Ignored::SoaNotNewer { current, .. } => format!(
                "give the SOA a serial newer than {current}, or leave the serial to cutover (it rises on every change)"
            ),
            Ignored::NothingToDelete { .. } => "nothing to delete".to_owned(),
        }
    }
}

/// An owner name: "@" is the apex, a name ending in "." is absolute, any
/// other is relative to the zone; it must be inside the zone.
pub fn owner_name(text: &str, origin: &Name) -> Result<Name, EditError> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_str(text)
        .map_err(|e| EditError::Invalid(format!("invalid name {text:?}: {e}")))?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(origin)
            .map_err(|e| EditError::Invalid(format!("invalid name {text:?} in {origin}: {e}")))?
    };
    if !origin.zone_of(&name) {
        return Err(EditError::Invalid(format!(
            "{name} is outside the zone {origin}"
        )));
    }
    Ok(name)
}

/// A record type by mnemonic (or TYPEnnn).
pub fn record_type(text: &str) -> Result<RecordType, EditError> {
    let upper = text.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Ok(RecordType::from(code));
    }
    if upper == "DNAME" {
        return Ok(RecordType::from(cutover_zone::rdata::DNAME));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => {
            Err(EditError::Invalid(format!("unknown record type {text:?}")))
        }
        Ok(rtype) => Ok(rtype),
    }
}

/// A record's data in zone-file form.
fn data_text(name: &Name, rdata: &Rdata) -> String {
    let text = zonefile::record_to_text(&Record {
        name: name.clone(),
        ttl: 0,
        rdata: rdata.clone(),
    });
    // "owner TTL IN TYPE data"
    text.splitn(5, ' ').nth(4).unwrap_or_default().to_owned()
}

/// An edit of a batch refused, with its place in the batch when one edit
/// is to blame (a refusal of the whole, such as a zone check, has none).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct BatchError {
    /// The index of the edit to blame in the batch.
    pub index: Option<usize>,
    /// Why.
    pub error: EditError,
}

/// Applies `edits` to `zone` in one UPDATE with the operator's policy and
/// the clock at `now_unix`: every edit made, or none (an edit the rules
/// would drop is an error, as is any refusal of the update path).
pub fn apply(zone: &Zone, edits: &[Edit], now_unix: u32) -> Result<Outcome, EditError> {
    apply_batch(zone, edits, now_unix).map_err(|refused| refused.error)
}

/// [`apply`], naming the edit to blame when one is: what `cutover record
/// apply` and the API's batches use to point at the line or the entry.
/// Each edit reads the zone as it is before the batch (a delete of data
/// the same batch adds finds nothing); later edits apply over earlier
/// ones, so a set followed by adds to the same RRset leaves all of them.
pub fn apply_batch(zone: &Zone, edits: &[Edit], now_unix: u32) -> Result<Outcome, BatchError> {
    let origin = zone.origin();
    let mut changes = Vec::new();
    for (index, edit) in edits.iter().enumerate() {
        changes.extend(edit.changes(zone).map_err(|error| BatchError {
            index: Some(index),
            error,
        })?);
    }
    let update = Update {
        id: 0,
        zone: origin.clone(),
        prerequisites: Vec::new(),
        changes,
    };
    let policy = operator_policy(origin);
    let (outcome, ignored) = apply_noting(zone, &update, None, OPERATOR, &policy, now_unix)
        .map_err(|error| BatchError {
            index: None,
            error: error.into(),
        })?;
    // A delete the edit itself added (set's delete of a missing RRset,
    // replace's deletes) that found nothing is not a refusal.
    let dropped = ignored
        .into_iter()
        .find(|ignored| !matches!(ignored, Ignored::NothingToDelete { .. }));
    if let Some(ignored) = dropped {
        let index = edits
            .iter()
            .position(|edit| concerns(edit, &ignored))
            .or((!edits.is_empty()).then_some(0));
        let way_out = index
            .map(|i| edits[i].way_out(&ignored))
            .unwrap_or_default();
        return Err(BatchError {
            index,
            error: EditError::Ignored { ignored, way_out },
        });
    }
    Ok(outcome)
}

/// True when the dropped change is at this edit's name.
fn concerns(edit: &Edit, ignored: &Ignored) -> bool {
    match ignored {
        Ignored::DataBesideCname { name, .. }
        | Ignored::CnameBesideData { name, .. }
        | Ignored::ApexRrset { name, .. }
        | Ignored::SoaDelete { name }
        | Ignored::LastApexNs { name }
        | Ignored::NothingToDelete { name, .. } => *name == edit.name,
        Ignored::SoaNotNewer { .. } => edit.rtype == RecordType::SOA,
    }
}

/// What a batch entry does to one RRset, in PowerDNS's words (its
/// `changetype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RrsetAction {
    /// The RRset becomes exactly the records given (none: deleted).
    Replace,
    /// The RRset is deleted (type ANY: every RRset of the name).
    Delete,
    /// The records given join the RRset.
    Extend,
    /// The records given leave the RRset.
    Prune,
}

/// The edits of one batch entry: `owner`, `rtype` and record data in
/// zone-file form as [`Edit::parse`] reads them; `ttl` the RRset's TTL (for
/// a replace or an extend; default: the RRset's, else [`DEFAULT_TTL`]).
/// A replace is a set of the first record and adds of the rest; a replace
/// with no records is a delete.
pub fn rrset_edits(
    action: RrsetAction,
    owner: &str,
    rtype: &str,
    ttl: Option<u32>,
    datas: &[&str],
    origin: &Name,
) -> Result<Vec<Edit>, EditError> {
    let needs = |what: &str| {
        EditError::Invalid(format!(
            "{what} {owner} {rtype} needs at least one record's data"
        ))
    };
    let one = |action: Action, data: &str| {
        let mut edit = Edit::parse(action, owner, rtype, data, origin)?;
        edit.ttl = ttl;
        Ok::<_, EditError>(edit)
    };
    match action {
        RrsetAction::Replace | RrsetAction::Delete if datas.is_empty() => {
            Ok(vec![one(Action::Delete, "")?])
        }
        RrsetAction::Delete => Err(EditError::Invalid(format!(
            "a delete of {owner} {rtype} takes no records (to remove some, prune them)"
        ))),
        RrsetAction::Replace => datas
            .iter()
            .enumerate()
            .map(|(i, data)| match i {
                0 => one(Action::Set, data),
                _ => one(Action::Add, data),
            })
            .collect(),
        RrsetAction::Extend if datas.is_empty() => Err(needs("extend")),
        RrsetAction::Prune if datas.is_empty() => Err(needs("prune")),
        RrsetAction::Extend => datas.iter().map(|data| one(Action::Add, data)).collect(),
        RrsetAction::Prune => datas.iter().map(|data| one(Action::Delete, data)).collect(),
    }
}
