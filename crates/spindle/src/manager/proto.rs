//! The manager's messages: request and reply envelopes, MessagePack with
//! named fields (docs/PROTOCOL.md, "Messages").
//!
//! Values a client stores (queue items, dict keys and values, ...) are
//! opaque byte strings to the server: clients encode them as MessagePack
//! with named fields; the server never decodes them.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::error::ManagerError;

/// An opaque value: the client's MessagePack encoding of one item.
pub(crate) type Bin = ByteBuf;

/// How long a blocking call may wait on the server.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wait {
    /// Do not wait (`block=False`).
    No,
    /// Wait as long as it takes (`block=True, timeout=None`).
    Forever,
    /// Wait at most this many nanoseconds (a relative time: the two hosts'
    /// clocks need not agree).
    Nanos(u64),
}

/// One request. `id == 0` asks for no reply.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Request {
    /// The client thread's channel: requests of one channel run in order,
    /// in one server thread when they must block or own a lock.
    pub(crate) ch: u32,
    /// Echoed in the reply.
    pub(crate) id: u64,
    pub(crate) op: Op,
}

/// What a request asks.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Op {
    /// The first message of a connection.
    Hello { pid: u32 },
    /// Make a new object of `typeid` (see [`super::Typeid`]); replies a
    /// token.
    Create {
        typeid: String,
        fp: String,
        arg: Arg,
    },
    /// The object registered under `name`; replies a token.
    Lookup {
        name: String,
        typeid: String,
        fp: String,
    },
    /// One more reference from this connection.
    Incref { obj: u64 },
    /// One reference fewer from this connection.
    Decref { obj: u64 },
    /// A reference of this connection's own on a live object it may not
    /// hold yet: a child made by fork adopting its parent's proxy (Python's
    /// `BaseProxy._after_fork` incref). Replies `Unit`, or `NotFound`.
    Adopt { obj: u64 },
    /// A ticket that lets another connection claim a reference within the
    /// lease time (a proxy passed to another process).
    Lease { obj: u64 },
    /// Trade a lease ticket for a reference; replies a token.
    Claim { ticket: u64 },
    /// Call a method of an object.
    Call { obj: u64, call: Call },
    /// Call a method of an object from an async face: always in the
    /// channel's thread, and cancellable by `Cancel`.
    CallAsync { obj: u64, call: Call },
    /// Cancel the `CallAsync` of request `id` of this connection: replies
    /// `Bool(true)` if it was stopped before taking effect (its own reply
    /// is then `Cancelled`), `Bool(false)` if it had taken effect (its reply
    /// was sent before this one).
    Cancel { id: u64 },
    /// The client thread of channel `ch` ended: its server thread ends
    /// too, releasing what it held.
    CloseChannel,
    /// The server's counters.
    Stats,
    /// Stop the server (only the connection that started it may).
    Shutdown,
}

/// How many bytes of items one `GetMany` reply carries at most (at
/// least one item, whatever its size).
pub const GET_MANY_BYTES: usize = 8 << 20;

/// A new object's argument.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Arg {
    None,
    Size(u64),
    Bin(Bin),
    Bins(Vec<Bin>),
}

/// A method call on an object.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Call {
    // Queues.
    Put {
        item: Bin,
        wait: Wait,
    },
    Get {
        wait: Wait,
    },
    QSize,
    MaxSize,
    TaskDone,
    Join {
        wait: Wait,
    },
    QShutdown {
        immediate: bool,
    },
    IsShutdown,
    /// Put back at the head an item a cancelled `get_async` had taken.
    Unget {
        item: Bin,
    },
    /// Take back an item a cancelled `put_async` had put, if still queued.
    Unput {
        item: Bin,
    },
    /// Put back at the head, in order, items a cancelled `get_many_async`
    /// had taken.
    UngetMany {
        items: Vec<Bin>,
    },
    /// Put every item, in order, each waiting its turn as `Put` does.
    /// Replies `U64`: how many went in (fewer than sent: the queue shut
    /// down, or was full for `wait: "No"`, midway; none at all is that
    /// failure).
    PutMany {
        items: Vec<Bin>,
        wait: Wait,
    },
    /// Take one item, waiting as `Get` does, then up to `max - 1` more that
    /// are already there (and not owed to getters waiting in line), within
    /// [`GET_MANY_BYTES`]. Replies `Bins`.
    GetMany {
        max: u64,
        wait: Wait,
    },
    // Dicts (keys and values compared by their encoding).
    DGet {
        key: Bin,
    },
    DSet {
        key: Bin,
        val: Bin,
    },
    DDel {
        key: Bin,
    },
    DPop {
        key: Bin,
    },
    DContains {
        key: Bin,
    },
    DSetDefault {
        key: Bin,
        val: Bin,
    },
    DUpdate {
        pairs: Vec<(Bin, Bin)>,
    },
    DItems,
    DClear,
    // Lists and arrays.
    Len,
    LGet {
        index: i64,
    },
    LSet {
        index: i64,
        val: Bin,
    },
    LAppend {
        val: Bin,
    },
    LExtend {
        vals: Vec<Bin>,
    },
    LInsert {
        index: i64,
        val: Bin,
    },
    LPop {
        index: i64,
    },
    LRemove {
        val: Bin,
    },
    LIndex {
        val: Bin,
    },
    LCount {
        val: Bin,
    },
    LAll,
    LClear,
    LReverse,
    // Values.
    VGet,
    VSet {
        val: Bin,
    },
    // Namespaces.
    NGet {
        name: String,
    },
    NSet {
        name: String,
        val: Bin,
    },
    NDel {
        name: String,
    },
    NAll,
    // Locks, semaphores, conditions.
    Acquire {
        wait: Wait,
    },
    Release,
    Locked,
    /// The calling channel's recursion depth of an RLock or Condition (0:
    /// not owned).
    Depth,
    SemValue,
    SemReleaseN {
        n: u64,
    },
    SemBound,
    // Events.
    EvSet,
    EvClear,
    EvIsSet,
    EvWait {
        wait: Wait,
    },
    // Conditions (acquire/release above).
    CondWait {
        wait: Wait,
    },
    CondNotify {
        n: u64,
    },
    // Barriers.
    BarWait {
        wait: Wait,
    },
    BarReset,
    BarAbort,
    BarInfo,
    // Brokers (`Manager::broker`).
    /// Put entries; replies `Ids`.
    BPut {
        items: Vec<Bin>,
        max_deliveries: u32,
        /// If one of these entries is given up because its lease ran out
        /// once too often: `(client, message, ttl_ms)` added to that
        /// client's result stream.
        on_dead: Option<(String, Bin, u64)>,
    },
    /// Take up to `n` entries under a lease of `lease_ms` for `consumer`,
    /// waiting for the first; replies `Deliveries`.
    BFetch {
        n: u64,
        wait: Wait,
        lease_ms: u64,
        consumer: String,
    },
    /// Acknowledge: replies `U64`, how many were `consumer`'s.
    BAck {
        ids: Vec<u64>,
        consumer: String,
    },
    /// Give an entry back, to be fetched again after `delay_ms`; `Bool`.
    BNack {
        id: u64,
        consumer: String,
        delay_ms: u64,
    },
    /// Extend `consumer`'s leases; `U64`, how many it still held.
    BExtend {
        ids: Vec<u64>,
        consumer: String,
        lease_ms: u64,
    },
    /// Acknowledge and, if the ack counts, add `result` to `client`'s
    /// result stream (kept at least `ttl_ms` more); `Bool`.
    BAckResult {
        id: u64,
        consumer: String,
        client: String,
        result: Bin,
        ttl_ms: u64,
    },
    /// Take up to `max` of `client`'s results, waiting for the first;
    /// `Bins`.
    BResults {
        client: String,
        max: u64,
        wait: Wait,
    },
    /// Give an entry up, with a reason; `Bool`.
    BDeadLetter {
        id: u64,
        consumer: String,
        reason: String,
        /// Also tell a client why: `(client, result, ttl_ms)` added to its
        /// result stream, as `BAckResult` does.
        notify: Option<(String, Bin, u64)>,
    },
    /// Take entry `id` out of the queue if no consumer has it yet (a
    /// cancelled task); `Bool`: whether it was still queued.
    BCancel {
        id: u64,
    },
    /// Add `message` to `client`'s result stream without acknowledging
    /// anything (a worker saying it started a task); `Unit`.
    BNotify {
        client: String,
        message: Bin,
        ttl_ms: u64,
    },
    /// The newest `limit` dead letters; `Dead`.
    BDead {
        limit: u64,
    },
    /// The counters; `Broker`.
    BCounts,
    /// Wait until nothing is unfinished; `Bool` (false: timed out).
    BJoin {
        wait: Wait,
    },
    // Remote objects (`#[spindle::remote]`).
    /// Call method `method` of a remote object; `args` is the tuple of its
    /// arguments, encoded by the client. Replies `Bin`: the encoded result.
    Invoke {
        method: String,
        args: Bin,
    },
    /// A worker's heartbeat: `record` (its status, opaque to the server)
    /// is what `BWorkers` shows of `worker` until `expire_ms` pass without
    /// another; `expire_ms` 0 removes it now (a worker that stopped).
    /// `Unit`.
    BHeartbeat {
        worker: String,
        record: Bin,
        expire_ms: u64,
    },
    /// The workers whose heartbeat has not expired; `Workers`.
    BWorkers,
    /// Puts every dead letter kept back in the queue as a new entry (its
    /// deliveries counted from 0); `U64`: how many.
    BRetryDead,
    /// Drops every dead letter kept; `U64`: how many.
    BPurgeDead,
}

impl Call {
    /// Whether this call must run in the channel's own server thread: it
    /// may block, or the thread that runs it owns what it takes.
    pub(crate) fn needs_channel(&self) -> bool {
        match self {
            Call::Put { wait, .. }
            | Call::Get { wait }
            | Call::PutMany { wait, .. }
            | Call::GetMany { wait, .. }
            | Call::BFetch { wait, .. }
            | Call::BJoin { wait }
            | Call::BResults { wait, .. }
            | Call::Join { wait }
            | Call::EvWait { wait } => *wait != Wait::No,
            Call::Acquire { .. }
            | Call::Release
            | Call::Depth
            | Call::CondWait { .. }
            | Call::CondNotify { .. }
            | Call::BarWait { .. }
            | Call::Invoke { .. } => true,
            _ => false,
        }
    }
}

/// An object reference: what a proxy holds and what travels when a proxy
/// is passed to another process.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) obj: u64,
    pub(crate) typeid: String,
    pub(crate) fp: String,
}

/// A reply: `out` is the call's result or its failure.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Reply {
    pub(crate) id: u64,
    pub(crate) out: Result<Value, Fail>,
}

/// A successful result.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Unit,
    Bool(bool),
    U64(u64),
    Bin(Bin),
    OptBin(Option<Bin>),
    Bins(Vec<Bin>),
    Pairs(Vec<(Bin, Bin)>),
    Names(Vec<(String, Bin)>),
    Token(Token),
    Stats(Stats),
    Ids(Vec<u64>),
    Deliveries(Vec<super::broker::WireDelivery>),
    Dead(Vec<super::broker::WireDead>),
    Broker(super::broker::BrokerCounts),
    Workers(Vec<super::broker::WireWorker>),
}

/// The server's counters.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now.
    pub connections: u64,
    /// Objects alive now.
    pub objects: u64,
    /// Channel threads alive now.
    pub channels: u64,
    /// Calls running in channel threads now (blocked ones among them).
    pub in_channel: u64,
    /// Locks released because the channel that held them died.
    pub owner_deaths: u64,
    /// Items put back at the head of a queue because the client that took
    /// them could not be told.
    pub items_returned: u64,
    /// Sockets that authenticated.
    pub handshakes_accepted: u64,
    /// Sockets closed before they authenticated: a wrong key, garbage, a
    /// frame over the 256-byte limit, the 5 s deadline, or over the cap of
    /// sockets authenticating at once.
    pub handshakes_refused: u64,
    /// Sockets authenticating now.
    pub handshakes_pending: u64,
}

/// Why a call failed on the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    Empty,
    Full,
    Timeout,
    ShutDown,
    /// task_done called more times than items were put.
    TooManyTaskDone,
    /// Dict key or namespace attribute absent.
    KeyError,
    /// List index out of range.
    IndexError,
    /// list.remove / list.index of an absent value.
    ValueError,
    /// Released a lock not held, or an RLock/Condition not owned.
    NotOwned,
    /// Released a semaphore past its bound.
    OverRelease,
    /// release_n(0).
    ReleaseZero,
    /// The barrier is broken.
    Broken,
    /// A cancelled async call, stopped before it took effect.
    Cancelled,
    NotFound(String),
    WrongType {
        expected: String,
        found: String,
    },
    Limit(String),
    BadArg(String),
    /// A remote object's arguments or result did not decode or encode.
    Codec(String),
    /// A remote object's method panicked.
    Panicked {
        method: String,
        message: String,
    },
}

impl Fail {
    /// The failures that are not an outcome of the operation itself.
    pub(crate) fn into_error(self) -> ManagerError {
        match self {
            Fail::NotFound(m) => ManagerError::NotFound(m),
            Fail::WrongType { expected, found } => ManagerError::WrongType { expected, found },
            Fail::Limit(m) => ManagerError::Limit(m),
            Fail::BadArg(m) => ManagerError::Remote(m),
            Fail::Codec(m) => ManagerError::Codec(m),
            Fail::Panicked { method, message } => ManagerError::Panicked { method, message },
            other => ManagerError::Remote(format!("unexpected outcome {other:?}")),
        }
    }
}

/// Encodes an envelope (MessagePack, named fields).
pub(crate) fn encode<T: Serialize>(v: &T, buf: &mut Vec<u8>) -> Result<(), ManagerError> {
    buf.clear();
    rmp_serde::encode::write_named(buf, v).map_err(ManagerError::codec)
}

/// Decodes an envelope; garbage is a protocol error.
pub(crate) fn decode<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<T, ManagerError> {
    rmp_serde::from_slice(buf).map_err(|e| ManagerError::protocol(format!("bad envelope: {e}")))
}

/// Encodes a user value (MessagePack, named fields).
pub(crate) fn encode_value<T: Serialize + ?Sized>(v: &T) -> Result<Bin, ManagerError> {
    rmp_serde::to_vec_named(v)
        .map(ByteBuf::from)
        .map_err(ManagerError::codec)
}

/// Decodes a user value.
pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    rmp_serde::from_slice(b).map_err(ManagerError::codec)
}

/// `Wait` for a deadline, measured now.
pub(crate) fn wait_until(deadline: std::time::Instant) -> Wait {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    Wait::Nanos(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn envelopes_round_trip() {
        let req = Request {
            ch: 3,
            id: 9,
            op: Op::Call {
                obj: 5,
                call: Call::Put {
                    item: Bin::from(vec![1, 2, 3]),
                    wait: Wait::Nanos(7),
                },
            },
        };
        let mut buf = Vec::new();
        encode(&req, &mut buf).unwrap();
        let back: Request = decode(&buf).unwrap();
        assert_eq!(format!("{back:?}"), format!("{req:?}"));
        let reply = Reply {
            id: 9,
            out: Err(Fail::WrongType {
                expected: "dict".into(),
                found: "Queue".into(),
            }),
        };
        encode(&reply, &mut buf).unwrap();
        let back: Reply = decode(&buf).unwrap();
        assert_eq!(back.out, reply.out);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bad in [&b""[..], b"\xc1", b"\x81\xa2id\xff", &[0x92; 64]] {
            let e = decode::<Request>(bad).unwrap_err();
            assert!(e.is_protocol(), "{e}");
        }
    }

    /// `fuzz_decode_1m`: a million random envelopes (seeded, so a failure
    /// repeats), as a peer could send after authenticating: a typed error
    /// or a value, never a panic. Half are random bytes, half a valid
    /// envelope with a random tail, to reach deeper into the decoder.
    #[test]
    fn fuzz_decode_1m() {
        let n = if cfg!(miri) { 200 } else { 1_000_000 };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut valid = Vec::new();
        encode(
            &Request {
                ch: 1,
                id: 2,
                op: Op::Call {
                    obj: 3,
                    call: Call::Get { wait: Wait::No },
                },
            },
            &mut valid,
        )
        .unwrap();
        let mut buf = Vec::with_capacity(64);
        for i in 0..n {
            buf.clear();
            if i % 2 == 1 {
                let keep = (next() as usize) % valid.len();
                buf.extend_from_slice(&valid[..keep]);
            }
            let len = (next() % 40) as usize;
            buf.extend((0..len).map(|_| next() as u8));
            let _ = decode::<Request>(&buf);
            let _ = decode::<Reply>(&buf);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 4096 }))]
        /// Any envelope the client can build decodes to itself.
        #[test]
        fn any_put_round_trips(item in proptest::collection::vec(any::<u8>(), 0..64), ch in any::<u32>(), id in any::<u64>(), n in any::<u64>()) {
            let req = Request { ch, id, op: Op::Call { obj: n, call: Call::Put { item: Bin::from(item), wait: Wait::Nanos(n) } } };
            let mut buf = Vec::new();
            encode(&req, &mut buf).unwrap();
            let back: Request = decode(&buf).unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{req:?}"));
        }
    }
}

/// The byte-for-byte examples of docs/PROTOCOL.md ("Messages"): if an
/// encoding changes, this fails, and the document (and the protocol
/// version) must change with it.
#[cfg(test)]
mod golden {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn check<T: Serialize + for<'a> Deserialize<'a> + std::fmt::Debug>(v: &T, doc: &str) {
        let mut buf = Vec::new();
        encode(v, &mut buf).unwrap();
        assert_eq!(buf, unhex(doc), "the encoding of {v:?} moved");
        let back: T = decode(&unhex(doc)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{v:?}"));
    }

    #[test]
    fn the_documented_transcript() {
        // A client thread (channel 1) puts one item, 0x2a, into object 3.
        check(
            &Request {
                ch: 1,
                id: 2,
                op: Op::Call {
                    obj: 3,
                    call: Call::Put {
                        item: Bin::from(vec![0x2a]),
                        wait: Wait::No,
                    },
                },
            },
            "83 a2 63 68 01 a2 69 64 02 a2 6f 70 81 a4 43 61 6c 6c 82 a3 6f 62 6a 03 \
             a4 63 61 6c 6c 81 a3 50 75 74 82 a4 69 74 65 6d c4 01 2a a4 77 61 69 74 \
             a2 4e 6f",
        );
        // The server's answer: done.
        check(
            &Reply {
                id: 2,
                out: Ok(Value::Unit),
            },
            "82 a2 69 64 02 a3 6f 75 74 81 a2 4f 6b a4 55 6e 69 74",
        );
        // A `get` that would wait on an empty queue, answered `Empty`.
        check(
            &Reply {
                id: 4,
                out: Err(Fail::Empty),
            },
            "82 a2 69 64 04 a3 6f 75 74 81 a3 45 72 72 a5 45 6d 70 74 79",
        );
        // A unit request.
        check(
            &Request {
                ch: 1,
                id: 5,
                op: Op::Stats,
            },
            "83 a2 63 68 01 a2 69 64 05 a2 6f 70 a5 53 74 61 74 73",
        );
    }
}
