//! Typed job states: the `status` a row is in, and the outcome a worker records for a job.
//!
//! Both were strings spread over the database layer, the worker, the HTTP layer and the
//! metrics; as enums a new state is one variant, and every `match` the compiler walks you
//! through. The database keeps `status` as `text` (SQL stays a job source), so the
//! conversions below read and write exactly the words of the table's `CHECK` constraint.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use utoipa::ToSchema;

/// Where a row (an image job) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to be claimed (possibly not before `run_after`).
    Pending,
    /// Claimed by a worker whose lease has not expired.
    Processing,
    /// Done; the result is stored.
    Completed,
    /// Given up on; `error` says why.
    Failed,
    /// Stopped by a client (`POST /api/images/{id}/cancel`) before it finished; a worker
    /// running it dropped its result. Retry puts it back in the queue.
    Cancelled,
}

impl JobStatus {
    /// Every status, in the order the API lists them.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The word stored in the table and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Still in the queue: a worker has yet to finish it.
    pub fn is_active(self) -> bool {
        match self {
            JobStatus::Pending | JobStatus::Processing => true,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => false,
        }
    }

    /// The statuses as a sentence fragment for error messages: "pending, processing, … or failed".
    pub fn choices() -> String {
        let words: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.concat(),
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a status.
#[derive(Debug, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl<'a> FromSql<'a> for JobStatus {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(<&str as FromSql>::from_sql(ty, raw)?.parse()?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// How one job ended for the worker that ran it: the `outcome` label of `jobs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// The result was written back under this worker's claim.
    Completed,
    /// The job ended `failed` under this worker's claim.
    Failed,
    /// The lease sweep took the claim back from a vanished worker and re-queued it.
    Retried,
    /// Handed back unfinished at shutdown; the attempt is not counted.
    Released,
    /// The claim was lost before the write-back (lease expired, row deleted or retried): the
    /// result was dropped.
    Fenced,
    /// The write-back kept failing; the lease will expire and the job run again.
    Unwritten,
    /// Ran past `JOB_TIMEOUT_SECS` and ended `failed` (`job_timeout`) under this claim.
    TimedOut,
    /// Cancelled by a client while it ran: stopped at the next safe point, result dropped.
    Cancelled,
}

impl JobOutcome {
    /// Every outcome, so dashboards can see each series from start-up.
    pub const ALL: [JobOutcome; 8] = [
        JobOutcome::Completed,
        JobOutcome::Failed,
        JobOutcome::Retried,
        JobOutcome::Released,
        JobOutcome::Fenced,
        JobOutcome::Unwritten,
        JobOutcome::TimedOut,
        JobOutcome::Cancelled,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            JobOutcome::Completed => "completed",
            JobOutcome::Failed => "failed",
            JobOutcome::Retried => "retried",
            JobOutcome::Released => "released",
            JobOutcome::Fenced => "fenced",
            JobOutcome::Unwritten => "unwritten",
            JobOutcome::TimedOut => "timed_out",
            JobOutcome::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_word() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().ok(), Some(status));
            let json = serde_json::to_value(status).expect("serialise");
            assert_eq!(json, serde_json::Value::from(status.as_str()));
        }
        assert!("PENDING".parse::<JobStatus>().is_err());
        assert!("".parse::<JobStatus>().is_err());
    }

    #[test]
    fn the_schema_lists_the_words_of_the_table_constraint() {
        // The constraint as the latest migration that rewrote it left it.
        let sql = include_str!("../sql/0011_cancelled_and_history.sql");
        let check = sql
            .lines()
            .find(|l| l.contains("CHECK (status IN"))
            .expect("the status CHECK constraint");
        for status in JobStatus::ALL {
            assert!(check.contains(&format!("'{status}'")), "{status} not in {check}");
        }
        assert_eq!(
            JobStatus::choices(),
            "pending, processing, completed, failed or cancelled"
        );
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let mut labels: Vec<_> = JobOutcome::ALL.iter().map(|o| o.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), JobOutcome::ALL.len());
    }
}
