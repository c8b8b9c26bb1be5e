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
    /// The calls, each with its task's name and signature; empty when
    /// [`chunk`](Self::chunk) holds them.
    pub(crate) calls: Vec<EncodedCall>,
    /// How the job runs; absent (an entry made by hand or an older
    /// client): the worker's own options, no retries, no timeout.
    #[serde(default)]
    pub(crate) options: Option<JobOptions>,
    /// The submit's W3C `traceparent` (feature `tracing`; absent without
    /// it, and ignored by a worker built without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
    /// The calls of a job of more than one call (a `map` chunk), in
    /// short: their one task, named once, and each call's arguments. A
    /// chunk of 64 calls of a small task is then ~0.4 KB, not ~4.5 KB
    /// (the name and field names once, not 64 times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chunk: Option<Chunk>,
}

/// A [`JobEntry`]'s calls of one task, in short.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Chunk {
    /// The task's name ([`EncodedCall::name`]).
    pub(crate) name: String,
    /// Its signature ([`EncodedCall::signature`]).
    pub(crate) signature: u64,
    /// Each call's MessagePack-encoded arguments, in order.
    pub(crate) args: Vec<ByteBuf>,
}

impl JobEntry {
    /// An entry of `calls`: in short ([`chunk`](Self::chunk)) when there
    /// is more than one and they are all of one task (always, for an
    /// executor's job), else as they are.
    pub(crate) fn new(
        client: String,
        job: u64,
        mut calls: Vec<EncodedCall>,
        options: Option<JobOptions>,
        traceparent: Option<String>,
    ) -> JobEntry {
        let one_task = calls.split_first().is_some_and(|(first, rest)| {
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|c| c.name == first.name && c.signature == first.signature)
        });
        let chunk = if one_task {
            let (name, signature) = (calls[0].name.clone(), calls[0].signature);
            let args = calls.drain(..).map(|c| ByteBuf::from(c.args)).collect();
            Some(Chunk {
                name,
                signature,
                args,
            })
        } else {
            None
        };
        JobEntry {
            client,
            job,
            calls,
            options,
            traceparent,
            chunk,
        }
    }

    /// Its calls in full (a [`chunk`](Self::chunk) made calls again).
    pub(crate) fn expanded(mut self) -> JobEntry {
        if let Some(c) = self.chunk.take() {
            self.calls.extend(c.args.into_iter().map(|a| EncodedCall {
                name: c.name.clone(),
                signature: c.signature,
                args: a.into_vec(),
            }));
        }
        self
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, signature: u64, args: &[u8]) -> EncodedCall {
        EncodedCall {
            name: name.into(),
            signature,
            args: args.to_vec(),
        }
    }

    #[test]
    fn a_chunk_of_one_task_travels_in_short_and_comes_back_whole() {
        let calls: Vec<EncodedCall> = (0..64u8)
            .map(|i| call("some::module::square", 7, &[0x91, i]))
            .collect();
        let long = encode(&JobEntry {
            client: "c".into(),
            job: 1,
            calls: calls.clone(),
            options: None,
            traceparent: None,
            chunk: None,
        });
        let entry = JobEntry::new("c".into(), 1, calls.clone(), None, None);
        assert!(entry.calls.is_empty() && entry.chunk.is_some());
        let short = encode(&entry);
        assert!(
            short.len() * 5 < long.len(),
            "{} vs {}",
            short.len(),
            long.len()
        );
        let back = decode::<JobEntry>(&short).unwrap().expanded();
        assert_eq!(back.calls, calls);
        assert!(back.chunk.is_none());
        // An entry in full (one call, or made by hand) is read as before.
        let back = decode::<JobEntry>(&long).unwrap().expanded();
        assert_eq!(back.calls, calls);
    }

    #[test]
    fn calls_of_several_tasks_or_one_call_stay_as_they_are() {
        let one = vec![call("a", 1, b"x")];
        let e = JobEntry::new("c".into(), 1, one.clone(), None, None);
        assert!(e.chunk.is_none());
        assert_eq!(e.calls, one);
        let mixed = vec![call("a", 1, b"x"), call("b", 1, b"y")];
        let e = JobEntry::new("c".into(), 1, mixed.clone(), None, None);
        assert!(e.chunk.is_none());
        assert_eq!(e.expanded().calls, mixed);
        let signatures = vec![call("a", 1, b"x"), call("a", 2, b"y")];
        let e = JobEntry::new("c".into(), 1, signatures.clone(), None, None);
        assert!(e.chunk.is_none());
        assert_eq!(e.calls, signatures);
    }
}
