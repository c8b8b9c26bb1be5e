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
    pub(crate) args: ArgList,
}

/// One call of a [`JobEntry`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallRef<'a> {
    pub(crate) name: &'a str,
    pub(crate) signature: u64,
    pub(crate) args: &'a [u8],
}

impl CallRef<'_> {
    /// The call as an [`EncodedCall`] of its own.
    pub(crate) fn to_owned_call(self) -> EncodedCall {
        EncodedCall {
            name: self.name.to_owned(),
            signature: self.signature,
            args: self.args.to_vec(),
        }
    }
}

impl JobEntry {
    /// The entry of calls of task `name` (`signature`), one per item of
    /// `args` (each a call's MessagePack-encoded arguments): in short
    /// ([`chunk`](Self::chunk)) when there is more than one call, else as
    /// one [`EncodedCall`].
    pub(crate) fn of_calls(
        client: String,
        job: u64,
        (name, signature): (&str, u64),
        args: &[Vec<u8>],
        options: Option<JobOptions>,
        traceparent: Option<String>,
    ) -> JobEntry {
        let (calls, chunk) = if args.len() > 1 {
            let mut list = ArgList::with_capacity(args.len(), args.iter().map(Vec::len).sum());
            for a in args {
                list.push(a);
            }
            let chunk = Chunk {
                name: name.to_owned(),
                signature,
                args: list,
            };
            (Vec::new(), Some(chunk))
        } else {
            let calls = args
                .iter()
                .map(|a| EncodedCall {
                    name: name.to_owned(),
                    signature,
                    args: a.clone(),
                })
                .collect();
            (calls, None)
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

    /// How many calls it holds.
    pub(crate) fn len(&self) -> usize {
        self.calls.len() + self.chunk.as_ref().map_or(0, |c| c.args.len())
    }

    /// Its calls, in order (those in full, then the chunk's: an entry has
    /// one or the other).
    pub(crate) fn each_call(&self) -> impl Iterator<Item = CallRef<'_>> {
        let full = self.calls.iter().map(|c| CallRef {
            name: &c.name,
            signature: c.signature,
            args: &c.args,
        });
        let short = self.chunk.iter().flat_map(|c| {
            c.args.iter().map(move |args| CallRef {
                name: &c.name,
                signature: c.signature,
                args,
            })
        });
        full.chain(short)
    }
}

/// A chunk's arguments, each one call's MessagePack value, in one buffer:
/// two allocations for a chunk instead of one per call. On the wire an
/// array of *bin*s (what a `Vec<ByteBuf>` is).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ArgList {
    data: Vec<u8>,
    /// Where each call's arguments end in `data`.
    ends: Vec<usize>,
}

/// At most this many calls' room is reserved ahead from an array's
/// declared length (an entry's length prefix is not trusted: a garbage
/// entry declaring 2^32 items must not reserve their room).
const RESERVE_AT_MOST: usize = 4096;

impl ArgList {
    fn with_capacity(calls: usize, bytes: usize) -> ArgList {
        ArgList {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(calls),
        }
    }

    fn push(&mut self, args: &[u8]) {
        self.data.extend_from_slice(args);
        self.ends.push(self.data.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.data[a..b])
    }
}

impl Serialize for ArgList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(serde_bytes::Bytes::new))
    }
}

impl<'de> Deserialize<'de> for ArgList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ArgList, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = ArgList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of byte strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ArgList, A::Error> {
                let n = seq.size_hint().unwrap_or(0).min(RESERVE_AT_MOST);
                let mut list = ArgList::with_capacity(n, n * 16);
                while seq.next_element_seed(Append(&mut list))?.is_some() {}
                Ok(list)
            }
        }
        d.deserialize_seq(Items)
    }
}

/// Reads one byte string onto the end of an [`ArgList`]: in any form
/// serde_bytes' `ByteBuf` reads (bytes, a string, an array of bytes).
struct Append<'a>(&'a mut ArgList);

impl<'de> serde::de::DeserializeSeed<'de> for Append<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_byte_buf(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Append<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(v.as_bytes());
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(b) = seq.next_element::<u8>()? {
            self.0.data.push(b);
        }
        self.0.ends.push(self.0.data.len());
        Ok(())
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

/// A message in a client's result stream. `B` holds a result's bytes:
/// owned, or borrowed from the buffer the message is encoded from or
/// decoded out of (`&serde_bytes::Bytes`); the wire form is the same.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Message<B = ByteBuf> {
    /// A worker started the job (its future is running).
    Started { job: u64 },
    /// The job's outcomes, one per call: the encoded result or the fault.
    Done {
        job: u64,
        outcomes: Vec<Result<B, TaskFault>>,
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

impl Message {
    /// The message with its results borrowed from this one.
    pub(crate) fn borrowed(&self) -> Message<&serde_bytes::Bytes> {
        match self {
            Message::Started { job } => Message::Started { job: *job },
            Message::Done { job, outcomes } => Message::Done {
                job: *job,
                outcomes: outcomes
                    .iter()
                    .map(|o| match o {
                        Ok(b) => Ok(serde_bytes::Bytes::new(b)),
                        Err(f) => Err(f.clone()),
                    })
                    .collect(),
            },
            Message::Lost {
                job,
                reason,
                time_limit_ms,
                pid,
            } => Message::Lost {
                job: *job,
                reason: reason.clone(),
                time_limit_ms: *time_limit_ms,
                pid: *pid,
            },
        }
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    encode_sized(v, 0)
}

/// [`encode`] into a buffer made with room for `capacity` bytes (an
/// estimate: a `map` chunk's entry or results grow from empty through
/// seven or eight copies otherwise).
pub(crate) fn encode_sized<T: Serialize>(v: &T, capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity);
    // A JobEntry and a Message are plain data: encoding cannot fail.
    match rmp_serde::encode::write_named(&mut buf, v) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// About what each call adds to an encoded entry or `Done` message
/// beyond its own bytes (the *bin* header, `{"Ok": ..}` around a result).
pub(crate) const PER_CALL: usize = 8;

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

    fn owned(e: &JobEntry) -> Vec<EncodedCall> {
        e.each_call().map(CallRef::to_owned_call).collect()
    }

    fn by_hand(calls: Vec<EncodedCall>) -> JobEntry {
        JobEntry {
            client: "c".into(),
            job: 1,
            calls,
            options: None,
            traceparent: None,
            chunk: None,
        }
    }

    #[test]
    fn a_chunk_of_one_task_travels_in_short_and_comes_back_whole() {
        let args: Vec<Vec<u8>> = (0..64u8).map(|i| vec![0x91, i]).collect();
        let calls: Vec<EncodedCall> = args
            .iter()
            .map(|a| call("some::module::square", 7, a))
            .collect();
        let long = encode(&by_hand(calls.clone()));
        let entry = JobEntry::of_calls(
            "c".into(),
            1,
            ("some::module::square", 7),
            &args,
            None,
            None,
        );
        assert!(entry.calls.is_empty() && entry.chunk.is_some());
        assert_eq!(entry.len(), 64);
        let short = encode(&entry);
        assert!(
            short.len() * 5 < long.len(),
            "{} vs {}",
            short.len(),
            long.len()
        );
        let back = decode::<JobEntry>(&short).unwrap();
        assert_eq!(owned(&back), calls);
        assert_eq!(back.len(), 64);
        // An entry in full (one call, or made by hand) is read as before.
        let back = decode::<JobEntry>(&long).unwrap();
        assert_eq!(owned(&back), calls);
    }

    /// The short form's arguments travel as an array of *bin*s, as a
    /// `Vec<ByteBuf>`: an entry of either side reads on the other.
    #[test]
    fn chunk_arguments_are_an_array_of_bins_on_the_wire() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Plain {
            name: String,
            signature: u64,
            args: Vec<ByteBuf>,
        }
        let args: Vec<Vec<u8>> = vec![vec![0x91, 1], Vec::new(), vec![0x92, 2, 3]];
        let entry = JobEntry::of_calls("c".into(), 1, ("t", 9), &args, None, None);
        let list = &entry.chunk.as_ref().unwrap().args;
        let plain: Plain = decode(&encode(entry.chunk.as_ref().unwrap())).unwrap();
        assert_eq!(
            plain.args,
            args.iter().cloned().map(ByteBuf::from).collect::<Vec<_>>()
        );
        let back: Chunk = decode(&encode(&plain)).unwrap();
        assert_eq!(&back.args, list);
        assert_eq!(
            back.args.iter().collect::<Vec<_>>(),
            vec![&[0x91, 1][..], &[][..], &[0x92, 2, 3][..]]
        );
        // Bytes written as an array of integers read too (as ByteBuf does).
        let ints = rmp_serde::to_vec(&vec![vec![1u8, 2], vec![3u8]]).unwrap();
        let list: ArgList = rmp_serde::from_slice(&ints).unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            vec![&[1u8, 2][..], &[3u8][..]]
        );
    }

    /// A garbage entry declaring 2^32 - 1 arguments and holding none is
    /// refused, without reserving room for them.
    #[test]
    fn a_lying_argument_count_is_refused_cheaply() {
        let mut bytes = vec![0xdd, 0xff, 0xff, 0xff, 0xff]; // array32, 2^32 - 1 items
        bytes.extend_from_slice(&[0xc4, 1, 7]); // one bin of one byte
        let err = rmp_serde::from_slice::<ArgList>(&bytes).unwrap_err();
        assert!(!err.to_string().is_empty());
    }

    /// A `Done` message with borrowed results is byte for byte the one
    /// with owned results, and reads back borrowed (no copies) or owned.
    #[test]
    fn done_messages_borrow_their_results_on_both_sides() {
        let fault = || TaskFault::UnknownTask { name: "t".into() };
        let owned: Message = Message::Done {
            job: 7,
            outcomes: vec![
                Ok(ByteBuf::from(vec![0x2a])),
                Err(fault()),
                Ok(ByteBuf::from(Vec::new())),
            ],
        };
        let results = [0x2a_u8];
        let borrowed: Message<&serde_bytes::Bytes> = Message::Done {
            job: 7,
            outcomes: vec![
                Ok(serde_bytes::Bytes::new(&results)),
                Err(fault()),
                Ok(serde_bytes::Bytes::new(&[])),
            ],
        };
        let bytes = encode(&owned);
        assert_eq!(encode_sized(&borrowed, 64), bytes);
        let Message::Done { job, outcomes } =
            decode::<Message<&serde_bytes::Bytes>>(&bytes).unwrap()
        else {
            panic!("not Done");
        };
        assert_eq!(job, 7);
        let got: Vec<Result<&[u8], String>> = outcomes
            .into_iter()
            .map(|o| o.map(|b| &**b).map_err(|f| f.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![Ok(&[0x2a][..]), Err(fault().to_string()), Ok(&[][..])]
        );
        // Borrowed: each result points into the message's own bytes.
        let Message::Done { outcomes, .. } =
            decode::<Message<&serde_bytes::Bytes>>(&bytes).unwrap()
        else {
            panic!("not Done");
        };
        let first: &[u8] = outcomes[0].as_ref().unwrap();
        assert!(bytes.as_ptr_range().contains(&first.as_ptr()));
        // Results written as arrays of integers (another writer's form)
        // cannot be borrowed: they read owned, and borrow from that.
        #[derive(Serialize)]
        enum Other {
            #[allow(dead_code)]
            Started { job: u64 },
            Done {
                job: u64,
                outcomes: Vec<Result<Vec<u8>, TaskFault>>,
            },
        }
        let ints = encode(&Other::Done {
            job: 8,
            outcomes: vec![Ok(vec![0x2a]), Err(fault())],
        });
        assert!(decode::<Message<&serde_bytes::Bytes>>(&ints).is_err());
        let owned = decode::<Message>(&ints).unwrap();
        let Message::Done { job, outcomes } = owned.borrowed() else {
            panic!("not Done");
        };
        assert_eq!(job, 8);
        assert_eq!(outcomes[0].as_deref().map(|b| &**b), Ok(&[0x2a][..]));
        assert_eq!(outcomes[1].as_ref().unwrap_err(), &fault());
    }

    #[test]
    fn one_call_or_calls_of_several_tasks_stay_as_they_are() {
        let e = JobEntry::of_calls("c".into(), 1, ("a", 1), &[b"x".to_vec()], None, None);
        assert!(e.chunk.is_none());
        assert_eq!(e.calls, vec![call("a", 1, b"x")]);
        assert_eq!(owned(&e), e.calls);
        let mixed = vec![call("a", 1, b"x"), call("b", 1, b"y")];
        let e = decode::<JobEntry>(&encode(&by_hand(mixed.clone()))).unwrap();
        assert!(e.chunk.is_none());
        assert_eq!(owned(&e), mixed);
        assert_eq!(e.len(), 2);
        let none = JobEntry::of_calls("c".into(), 1, ("a", 1), &[], None, None);
        assert_eq!(none.len(), 0);
        assert_eq!(none.each_call().count(), 0);
    }
}
