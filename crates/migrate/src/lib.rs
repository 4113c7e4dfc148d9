//! The migration engine: moves a zone's records to new servers through DNS
//! without downtime — the procedure of lowering TTLs, waiting, switching,
//! verifying, observing and restoring, done by a program that computes
//! every wait from the real TTLs, records every step, and turns back by
//! itself when the new servers fail.
//!
//! ```text
//!  move-web.toml ──file::MigrationFile::read──▶ MigrationFile
//!                                                  │  provider::build ──▶ Box<dyn Provider> ──read──▶ Zone
//!                                                  │  checks.survey ──▶ Observations
//!                                                  ▼
//!                    plan::plan(file, zone, observations, now)  (pure) ──▶ Plan ──render──▶ text
//!                                                  │
//!                    runner::Migrations::start ────▼ (SQLite: migration, migration_step, migration_audit)
//!                    runner::Migrations::tick(id, Effects{provider, checks, flusher, mail, clock})
//!                        ──▶ due steps run, recorded before and after, audited ──▶ TickReport
//! ```

#![warn(missing_docs)]

pub mod agent;
pub mod checks;
pub mod effects;
pub mod file;
pub mod flush;
pub mod notify;
pub mod observe;
pub mod partial;
pub mod plan;
pub mod provider;
pub mod routed;
pub mod runner;
pub mod words;

pub use effects::{
    Checks, Clock, Flusher, MailControl, ManualClock, NoFlusher, NoMail, SystemClock,
};
pub use file::{FileError, MigrationFile};
pub use observe::{CheckResult, Observations, Survey};
pub use plan::{plan, render, Plan, PlanError, StepKind, Warning};
pub use runner::{Effects, Migrations, RunnerError, State, TickReport};
