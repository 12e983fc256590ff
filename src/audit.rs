//! The loss audit: find missing recordings before customers do.
//!
//! On 2017-05-09 the customer learned of the loss two days later, from the
//! partner. The audit reconciles the catalog with storage by *listing*
//! (pages of `ListObjectsV2`, a directory walk locally; never one HEAD per
//! recording): both sides are read in storage-key order, with flat memory,
//! and merged ([`reconcile`]). Each difference is a [`Finding`]: missing and
//! explained by an incident, missing and unexplained, in storage but unknown
//! to the catalog, the wrong size, or deleted yet still stored. Unexplained
//! losses that cluster in time become a draft incident ([`burst`]) that an
//! admin can confirm into the registry.
//!
//! Any storage or catalog error ends the audit with that error: a listing
//! that stopped half-way must not be read as "everything after is gone".

mod burst;
mod reconcile;
mod report;
mod run;
mod schedule;

pub use burst::{Burst, BurstRule, find_bursts};
pub use reconcile::{Context, reconcile};
pub use report::{Format as OutputFormat, render};
pub use run::{AuditError, Options, audit};
pub use schedule::{Audits, RunError};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::keys::Format;
use crate::sid::{AccountSid, RecordingSid};

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The catalog says completed, storage has no audio, and an incident
    /// explains it (the verdict is lost or recovering).
    MissingExplained,
    /// The catalog says completed, storage has no audio, nothing explains
    /// it: the finding that matters.
    MissingUnexplained,
    /// An object in storage that no catalog recording accounts for.
    UnknownObject,
    /// Stored, but empty or too small for the call's duration.
    SizeMismatch,
    /// The catalog says deleted, yet the audio is still stored.
    DeletedButStored,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::MissingExplained,
        Kind::MissingUnexplained,
        Kind::UnknownObject,
        Kind::SizeMismatch,
        Kind::DeletedButStored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingExplained => "missing_explained",
            Kind::MissingUnexplained => "missing_unexplained",
            Kind::UnknownObject => "unknown_object",
            Kind::SizeMismatch => "size_mismatch",
            Kind::DeletedButStored => "deleted_but_stored",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Kind::MissingExplained => "missing, explained by an incident",
            Kind::MissingUnexplained => "missing, unexplained",
            Kind::UnknownObject => "in storage, unknown to the catalog",
            Kind::SizeMismatch => "wrong size",
            Kind::DeletedButStored => "deleted, but still stored",
        }
    }
}

/// One difference between catalog and storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// The recording, when the catalog knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<RecordingSid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<AccountSid>,
    /// The formats concerned (missing ones, or the one of a wrong size).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<Format>,
    /// The storage keys concerned.
    pub keys: Vec<String>,
    /// When the call ended (start + duration), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// The incident that explains a missing recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The stored size, for stored objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The least a recording of this duration can weigh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_min_size: Option<u64>,
    /// One sentence for people.
    pub detail: String,
}

/// How many of each, and how much was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Catalog recordings read.
    pub recordings: u64,
    /// Storage objects listed.
    pub objects: u64,
    pub missing_explained: u64,
    pub missing_unexplained: u64,
    pub unknown_object: u64,
    pub size_mismatch: u64,
    pub deleted_but_stored: u64,
}

impl Counts {
    pub fn of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::MissingExplained => self.missing_explained,
            Kind::MissingUnexplained => self.missing_unexplained,
            Kind::UnknownObject => self.unknown_object,
            Kind::SizeMismatch => self.size_mismatch,
            Kind::DeletedButStored => self.deleted_but_stored,
        }
    }

    fn add(&mut self, kind: Kind) {
        let n = match kind {
            Kind::MissingExplained => &mut self.missing_explained,
            Kind::MissingUnexplained => &mut self.missing_unexplained,
            Kind::UnknownObject => &mut self.unknown_object,
            Kind::SizeMismatch => &mut self.size_mismatch,
            Kind::DeletedButStored => &mut self.deleted_but_stored,
        };
        *n += 1;
    }
}

/// The summary of one audit: what the trend, the metrics and the exit
/// status are made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// What was audited, in words (`all recordings`, `account AC…`, …).
    pub scope: String,
    /// Whether objects unknown to the catalog were looked for (not when
    /// the audit covers a time range: an object's time is not known).
    pub checked_unknown: bool,
    pub counts: Counts,
    pub bursts: Vec<Burst>,
}

/// A whole audit: its summary and every finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub summary: Summary,
    pub findings: Vec<Finding>,
}
