//! The IXFR response (RFC 1995 §4): the difference sequences from the
//! client's serial to ours, taken from the store's journal; the single SOA
//! when the client is up to date; the whole zone in AXFR form when the
//! journal cannot serve the client's serial.
//!
//! ```text
//!  client serial ≥ ours ─────────────────────────▶ [SOA]                       UpToDate
//!  journal chains client → ours, SOAs in place ──▶ [SOA, old SOA, −…, new SOA, +…, …, SOA]  Incremental
//!  anything else (no journal, gap, bad shape) ───▶ [SOA, records…, SOA]         Full
//! ```

use cutover_zone::{Record, RecordType, Serial, Zone, ZoneDiff};

use super::axfr::{push_zone, soa_record};
use super::message::{BuildError, Packer, Question};

/// Which of the three answers an IXFR got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IxfrForm {
    /// The client has our serial (or a newer one): our SOA alone.
    UpToDate,
    /// Difference sequences from the journal.
    Incremental,
    /// The whole zone in AXFR form (the journal could not serve the serial).
    Full,
}

/// An IXFR answer: its form and its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IxfrResponse {
    /// Which answer this is.
    pub form: IxfrForm,
    /// The messages, each at most the cap given.
    pub messages: Vec<Vec<u8>>,
}

/// The IXFR answer to a client at `client_serial`, for the query
/// `query_id` and `question`, in messages of at most `max_message` bytes.
///
/// `journal` is what `Store::journal(origin, client_serial)` returned (an
/// empty slice when it returned an error): each step after the client's
/// version, oldest first. It is used only when it chains exactly from
/// `client_serial` to `current`'s serial with each step's old and new SOA
/// first; otherwise the answer is the full zone.
pub fn ixfr_messages(
    current: &Zone,
    journal: &[ZoneDiff],
    client_serial: Serial,
    query_id: u16,
    question: &Question,
    max_message: usize,
) -> Result<IxfrResponse, BuildError> {
    let soa = soa_record(current)?;
    let serial = current.serial().unwrap_or(Serial(0));
    let mut packer = Packer::new(query_id, question, max_message);
    let form =
        if !serial.is_newer_than(client_serial) && serial.rfc1982_cmp(client_serial).is_some() {
            packer.push(&soa)?;
            IxfrForm::UpToDate
        } else if chains(journal, client_serial, serial) {
            packer.push(&soa)?;
            for diff in journal {
                for record in diff.removed.iter().chain(&diff.added) {
                    packer.push(record)?;
                }
            }
            packer.push(&soa)?;
            IxfrForm::Incremental
        } else {
            push_zone(&mut packer, current)?;
            IxfrForm::Full
        };
    Ok(IxfrResponse {
        form,
        messages: packer.finish(),
    })
}

/// True when `journal` leads from `from` to `to` step by step, each step
/// opening its removals with the old SOA and its additions with the new.
fn chains(journal: &[ZoneDiff], from: Serial, to: Serial) -> bool {
    let Some(last) = journal.last() else {
        return false;
    };
    let mut at = from;
    for diff in journal {
        let opens_with = |records: &[Record], serial: Serial| {
            records.first().is_some_and(|r| {
                r.rdata.rtype() == RecordType::SOA
                    && r.rdata.as_soa().is_some_and(|s| s.serial == serial.0)
            }) && records[1..]
                .iter()
                .all(|r| r.rdata.rtype() != RecordType::SOA)
        };
        if diff.from != at
            || !opens_with(&diff.removed, diff.from)
            || !opens_with(&diff.added, diff.to)
        {
            return false;
        }
        at = diff.to;
    }
    last.to == to
}
