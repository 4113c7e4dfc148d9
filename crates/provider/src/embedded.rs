//! The embedded provider: cutover's own store, where `cutover serve`
//! answers from.
//!
//! ```text
//!  apply ──Store::edit (one write transaction)──▶ current RRsets ──condition::pending──▶ conflict: rolled back
//!                                                                                    └─▶ set_rrset… ──▶ serial + 1, committed
//! ```
//!
//! The comparison runs inside the store's write transaction, so no other
//! writer can slip in between the check and the write: the change set is
//! all or nothing, and the serial rises only when something changed.

use std::cell::RefCell;
use std::sync::Arc;

use cutover_store::{Store, StoreError};
use cutover_zone::{Name, Zone};

use crate::condition::{self, present};
use crate::{Applied, Change, Provider, ProviderError};

/// cutover's store as a provider.
pub struct EmbeddedProvider {
    /// The store.
    store: Arc<Store>,
}

impl EmbeddedProvider {
    /// A provider over `store`.
    pub fn new(store: Arc<Store>) -> EmbeddedProvider {
        EmbeddedProvider { store }
    }

    /// The provider error for a store error about `zone`.
    fn error(&self, zone: &Name, e: StoreError) -> ProviderError {
        match e {
            StoreError::ZoneNotFound(_) => ProviderError::UnknownZone(zone.clone()),
            StoreError::Invalid { .. } | StoreError::Edit { .. } => {
                ProviderError::Refused(e.to_string())
            }
            other => ProviderError::Unreachable(format!(
                "the store at {}: {other}",
                self.store.path().display()
            )),
        }
    }
}

impl Provider for EmbeddedProvider {
    fn describe(&self) -> String {
        format!("cutover's store at {}", self.store.path().display())
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        self.store
            .zone(zone)
            .map_err(|e| self.error(zone, e))?
            .ok_or_else(|| ProviderError::UnknownZone(zone.clone()))
    }

    fn zones(&self) -> Result<Vec<Name>, ProviderError> {
        let root = Name::root();
        Ok(self
            .store
            .zones()
            .map_err(|e| self.error(&root, e))?
            .into_iter()
            .map(|z| z.origin)
            .collect())
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        // Set inside the edit when the comparison fails, so the error keeps its fields.
        let conflict = RefCell::new(None);
        let result = self
            .store
            .edit(zone, "provider change set", |current: &mut Zone| {
                let found: Vec<_> = changes
                    .iter()
                    .map(|c| current.get(&c.name, c.rtype).cloned())
                    .collect();
                let pending = match condition::pending(changes, &found) {
                    Ok(pending) => pending,
                    Err(e) => {
                        let text = e.to_string();
                        *conflict.borrow_mut() = Some(e);
                        return Err(text);
                    }
                };
                for change in pending {
                    let rrset = present(change.set.as_ref()).cloned().unwrap_or_default();
                    current
                        .set_rrset(&change.name, change.rtype, rrset)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            });
        if let Some(conflict) = conflict.into_inner() {
            return Err(conflict);
        }
        let diff = result.map_err(|e| self.error(zone, e))?;
        Ok(Applied {
            serial: Some(diff.to),
        })
    }
}
