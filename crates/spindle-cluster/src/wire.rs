//! What travels through the broker: a job's calls, and the messages a
//! worker sends back to the job's client (MessagePack, named fields).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use spindle::process::{EncodedCall, TaskFault};

/// One job: the calls of one `submit` (one call) or one `map` chunk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JobEntry {
    /// The client whose result stream gets the answer.
    pub(crate) client: String,
    /// The client's number for the job.
    pub(crate) job: u64,
    pub(crate) calls: Vec<EncodedCall>,
    /// How the job runs; absent (an entry made by hand or an older
    /// client): the worker's own options, no retries, no timeout.
    #[serde(default)]
    pub(crate) options: Option<JobOptions>,
    /// The submit's W3C `traceparent` (feature `tracing`; absent without
    /// it, and ignored by a worker built without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
}

/// A job's [`TaskOptions`](crate::TaskOptions), as they travel in its
/// entry (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobOptions {
    /// Runs again after a failure (a panic), at most this many times.
    pub(crate) retries: u32,
    /// The first retry's delay; each next one doubles it.
    pub(crate) backoff_ms: u64,
    /// The job's time limit: its lease, not extended.
    pub(crate) timeout_ms: Option<u64>,
    /// Its lease, extended while it runs (without a timeout).
    pub(crate) lease_ms: u64,
    /// Its results' time to live.
    pub(crate) result_ttl_ms: u64,
    /// Its deliveries at most, in all (`max_deliveries + retries`).
    pub(crate) deliveries: u32,
}

/// A message in a client's result stream.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Message {
    /// A worker started the job (its future is running).
    Started { job: u64 },
    /// The job's outcomes, one per call: the encoded result or the fault.
    Done {
        job: u64,
        outcomes: Vec<Result<ByteBuf, TaskFault>>,
    },
    /// The job was given up without outcomes: its workers kept dying
    /// (`max_deliveries` leases ran out), or its entry was not a job.
    Lost {
        job: u64,
        reason: String,
        /// The job ran past its timeout (ms): the future's `WorkerLost`
        /// has this time limit.
        #[serde(default)]
        time_limit_ms: Option<u64>,
        /// The process id of the worker that gave it up, if one did.
        #[serde(default)]
        pid: Option<u32>,
    },
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // A JobEntry and a Message are plain data: encoding cannot fail.
    rmp_serde::to_vec_named(v).unwrap_or_default()
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, String> {
    rmp_serde::from_slice(b).map_err(|e| e.to_string())
}
