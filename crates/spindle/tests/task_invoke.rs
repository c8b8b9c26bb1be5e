//! Running registered tasks by name from elsewhere (what a cluster worker
//! does): `process::invoke` and each `TaskFault`, task signatures, duplicate
//! names, the network form of a call (`EncodedCall`, MessagePack), a
//! `RemoteExecutor` of that form, futures completed from elsewhere
//! (`Promise::set_worker_lost`, `cancel_pending`, `on_cancel`), and
//! `process::calls` on every executor kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spindle::futures::{
    Executor, Future, FutureError, Promise, State, SubmitError, Task as ExecTask,
    ThreadPoolExecutor, WorkerLost,
};
use spindle::process::{
    self, CallJob, EncodedCall, ProcessPoolExecutor, RemoteExecutor, Task, TaskFault, WireError,
    WireFormat, invoke, invoke_into, signature_of,
};

#[spindle::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[spindle::task]
fn square(n: u64) -> u64 {
    n * n
}

#[spindle::task]
fn boom(n: u64) -> u64 {
    assert!(n == 0, "boom {n}");
    n
}

#[spindle::task]
fn nothing() {}

#[spindle::task]
fn spelled(
    _a: u64,
    _b: Vec<String>,
    _c: std::collections::BTreeMap<String, (u8, i64)>,
) -> Option<u8> {
    None
}

/// A result whose `Serialize` always fails: the `ResultEncode` case.
#[derive(Debug, Deserialize)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

#[spindle::task]
fn unencodable() -> Unencodable {
    Unencodable
}

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

/// The same shape, one field renamed: what a changed struct looks like on
/// the wire.
#[derive(Debug, Serialize, Deserialize)]
struct PointV2 {
    x: i64,
    z: i64,
}

#[spindle::task]
fn norm1(p: Point) -> i64 {
    p.x.abs() + p.y.abs()
}

#[spindle::task]
fn pipe_len(conn: spindle::ipc::Connection) -> u64 {
    drop(conn);
    0
}

fn net<T: Task>(call: spindle::process::Call<T>) -> EncodedCall {
    EncodedCall::new(&call).expect("encodable")
}

// ---- invoke and every TaskFault ----

#[test]
fn invoke_runs_the_task_by_name() {
    let call = net(add::call(2, 40));
    assert_eq!(call.name, add::NAME);
    assert_eq!(call.signature, add::SIGNATURE);
    let out = invoke(&call.name, call.signature, &call.args).unwrap();
    assert_eq!(EncodedCall::decode_result::<add>(&out).unwrap(), 42);
    // The result is MessagePack: 42 is the positive fixint 0x2a.
    assert_eq!(out, [0x2a]);
}

#[test]
fn unknown_task_is_a_fault() {
    let err = invoke("no::such::task", 1, &[0x90]).unwrap_err();
    assert_eq!(
        err,
        TaskFault::UnknownTask {
            name: "no::such::task".into()
        }
    );
    assert_eq!(err.task(), "no::such::task");
}

#[test]
fn wrong_signature_is_a_fault_before_decoding() {
    let call = net(add::call(1, 2));
    let err = invoke(&call.name, add::SIGNATURE ^ 1, &call.args).unwrap_err();
    assert_eq!(
        err,
        TaskFault::SignatureMismatch {
            name: add::NAME.into(),
            expected: add::SIGNATURE,
            found: add::SIGNATURE ^ 1,
        }
    );
    // Checked first: garbage arguments do not matter.
    let err = invoke(add::NAME, 0, b"garbage").unwrap_err();
    assert!(
        matches!(err, TaskFault::SignatureMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn garbage_arguments_are_arg_decode() {
    // 0xc1 is the one byte MessagePack never uses.
    let err = invoke(add::NAME, add::SIGNATURE, &[0xc1]).unwrap_err();
    assert!(
        matches!(&err, TaskFault::ArgDecode { name, .. } if name == add::NAME),
        "{err:?}"
    );
    // Well-formed MessagePack of the wrong shape: a string for two numbers.
    let wrong = rmp_serde::to_vec_named(&("two", "strings")).unwrap();
    let err = invoke(add::NAME, add::SIGNATURE, &wrong).unwrap_err();
    assert!(matches!(err, TaskFault::ArgDecode { .. }), "{err:?}");
    // Empty bytes.
    let err = invoke(add::NAME, add::SIGNATURE, &[]).unwrap_err();
    assert!(matches!(err, TaskFault::ArgDecode { .. }), "{err:?}");
}

#[test]
fn a_result_that_cannot_be_encoded_is_result_encode() {
    let call = net(unencodable::call());
    let err = call.invoke().unwrap_err();
    match err {
        TaskFault::ResultEncode { name, reason } => {
            assert_eq!(name, unencodable::NAME);
            assert!(reason.contains("refuses to be encoded"), "{reason}");
        }
        other => panic!("expected ResultEncode, got {other:?}"),
    }
}

#[test]
fn a_panicking_task_is_caught_as_panicked() {
    let call = net(boom::call(7));
    let err = call.invoke().unwrap_err();
    assert_eq!(
        err,
        TaskFault::Panicked {
            name: boom::NAME.into(),
            message: "boom 7".into(),
        }
    );
    // The thread is fine and the task runs again.
    let ok = net(boom::call(0)).invoke().unwrap();
    assert_eq!(EncodedCall::decode_result::<boom>(&ok).unwrap(), 0);
}

#[test]
fn a_fault_travels_as_messagepack() {
    let err = net(boom::call(1)).invoke().unwrap_err();
    let bytes = rmp_serde::to_vec_named(&err).unwrap();
    let back: TaskFault = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, err);
}

// ---- signatures ----

#[test]
fn signature_hashes_the_types_as_written() {
    assert_eq!(add::SIGNATURE, signature_of("(u64,u64)->u64"));
    assert_eq!(nothing::SIGNATURE, signature_of("()->()"));
    assert_eq!(
        spelled::SIGNATURE,
        signature_of("(u64,Vec<String>,std::collections::BTreeMap<String,(u8,i64)>)->Option<u8>")
    );
    assert_ne!(add::SIGNATURE, square::SIGNATURE);
}

#[test]
fn a_changed_struct_field_is_not_in_the_signature_but_fails_as_arg_decode() {
    // The caller's struct lost `y` and gained `z`; its signature still says
    // `(Point)->i64`, so only the named-field decode can tell.
    let args = rmp_serde::to_vec_named(&(PointV2 { x: 1, z: 2 },)).unwrap();
    let err = invoke(norm1::NAME, norm1::SIGNATURE, &args).unwrap_err();
    match err {
        TaskFault::ArgDecode { reason, .. } => assert!(reason.contains('y'), "{reason}"),
        other => panic!("expected ArgDecode, got {other:?}"),
    }
    let good = net(norm1::call(Point { x: -3, y: 4 })).invoke().unwrap();
    assert_eq!(EncodedCall::decode_result::<norm1>(&good).unwrap(), 7);
}

// ---- duplicate names ----

/// Two tasks named `twin` in two function bodies of one module: one name,
/// `task_invoke::twins::twin`.
mod twins {
    pub(super) fn one() -> &'static str {
        #[spindle::task]
        fn twin() -> u8 {
            1
        }
        <twin as spindle::process::Task>::NAME
    }

    pub(super) fn two() -> &'static str {
        #[spindle::task]
        fn twin() -> u8 {
            2
        }
        <twin as spindle::process::Task>::NAME
    }
}

#[test]
fn duplicate_task_names_are_found() {
    assert_eq!(twins::one(), twins::two());
    let name = twins::one();
    assert_eq!(process::duplicate_tasks(), [name]);
    let err = process::check_tasks().unwrap_err();
    assert_eq!(err.names(), [name]);
    assert!(err.to_string().contains(name), "{err}");
    // Every other name is unique.
    assert_eq!(
        process::task_names()
            .iter()
            .filter(|n| **n == add::NAME)
            .count(),
        1
    );
}

// ---- EncodedCall ----

#[test]
fn encoded_call_round_trips_through_messagepack() {
    let call = net(add::call(20, 22));
    let bytes = rmp_serde::to_vec_named(&call).unwrap();
    // A map of three named fields.
    assert_eq!(bytes[0], 0x83);
    let back: EncodedCall = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, call);
    let out = back.invoke().unwrap();
    assert_eq!(EncodedCall::decode_result::<add>(&out).unwrap(), 42);
}

#[test]
fn arguments_carrying_descriptors_are_refused() {
    let (a, _b) = spindle::ipc::Pipe(true).unwrap();
    let err = EncodedCall::new(&pipe_len::call(a)).unwrap_err();
    match err {
        WireError::CarriesDescriptors { task, count } => {
            assert_eq!(task, pipe_len::NAME);
            assert!(count >= 1, "{count}");
        }
        other => panic!("expected CarriesDescriptors, got {other:?}"),
    }
}

#[test]
fn a_result_of_the_wrong_type_is_a_decode_error() {
    let out = rmp_serde::to_vec_named(&"not a number").unwrap();
    let err = EncodedCall::decode_result::<add>(&out).unwrap_err();
    assert!(matches!(err, WireError::Decode { .. }), "{err:?}");
}

// ---- a RemoteExecutor of the network form ----

/// Runs every call at once on the submitting thread, in the network form,
/// refusing what cannot travel, as a cluster executor would.
#[derive(Debug)]
struct NetInline;

impl Executor for NetInline {
    type Job = CallJob;
    fn submit<W: ExecTask<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        if let Err(e) = task.check_wire() {
            return Err(SubmitError::Unsendable(task, e));
        }
        let (job, fut) = task.into_job();
        assert_eq!(job.wire(), WireFormat::MessagePack);
        job.run_here();
        Ok(fut)
    }
    fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
    fn max_workers(&self) -> usize {
        1
    }
}

impl RemoteExecutor for NetInline {
    const WIRE: WireFormat = WireFormat::MessagePack;
    fn call_job(job: CallJob) -> CallJob {
        job
    }
}

#[test]
fn a_network_form_executor_runs_calls_through_invoke() {
    assert_eq!(NetInline.submit(add::call(2, 3)).unwrap().result(), Ok(5));
    let err = NetInline
        .submit(boom::call(2))
        .unwrap()
        .result()
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("boom 2"));
    let squares: Vec<u64> = NetInline
        .map(process::calls(square::call), 1..=4)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares, [1, 4, 9, 16]);
}

#[test]
fn a_network_form_executor_refuses_descriptors_at_submit() {
    let (a, _b) = spindle::ipc::Pipe(true).unwrap();
    let err = NetInline.submit(pipe_len::call(a)).unwrap_err();
    assert!(
        matches!(err.wire_error(), Some(WireError::CarriesDescriptors { .. })),
        "{err:?}"
    );
    // The call comes back.
    let call = err.into_inner();
    assert_eq!(call.name(), pipe_len::NAME);
}

/// `fut` failed with `Panicked`, its message holding `part`.
fn assert_panicked<T: std::fmt::Debug + Clone>(fut: spindle::futures::Future<T>, part: &str) {
    let err = fut.result().unwrap_err();
    let holds = err.panic_message().is_some_and(|m| m.contains(part));
    assert!(holds, "{err:?} does not say {part:?}");
}

#[test]
fn a_network_form_call_job_ships_encoded_calls() {
    let (job, fut) = CallJob::of_wire(add::call(4, 5), WireFormat::MessagePack);
    assert_eq!(job.signature(), Some(add::SIGNATURE));
    assert!(job.wire_error().is_none());
    let calls = job.encoded_calls().expect("a MessagePack job");
    assert_eq!(calls.len(), 1);
    // The "worker": the encoded call crosses MessagePack and is invoked.
    let over = rmp_serde::to_vec_named(&calls[0]).unwrap();
    let there: EncodedCall = rmp_serde::from_slice(&over).unwrap();
    let out = there.invoke();
    job.complete_invoked(vec![out]);
    assert_eq!(fut.result(), Ok(9));

    let (job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    job.complete_invoked(vec![invoke("gone::task", 0, &[])]);
    assert_panicked(fut, "gone::task");

    let (job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    job.fail_unavailable();
    assert!(fut.result().unwrap_err().is_unavailable());

    // A postcard job (a local pool's) has no network form.
    let (job, fut) = CallJob::of(add::call(1, 1));
    assert_eq!((job.wire(), job.signature()), (WireFormat::Postcard, None));
    assert!(job.encoded_calls().is_none());
    job.fail_unavailable();
    assert!(fut.result().unwrap_err().is_unavailable());
}

/// Calls of different tasks, one after the other on one thread, each run
/// its own task (the lookup keeps a thread's last find: it must never
/// answer for another name).
#[test]
fn interleaved_tasks_each_run_their_own() {
    let two = |a: u64, b: u64| EncodedCall::new(&add::call(a, b)).unwrap();
    let sq = |n: u64| EncodedCall::new(&square::call(n)).unwrap();
    for i in 0..3u64 {
        let out = sq(i + 2).invoke().unwrap();
        assert_eq!(
            EncodedCall::decode_result::<square>(&out).unwrap(),
            (i + 2) * (i + 2)
        );
        let out = two(i, 10).invoke().unwrap();
        assert_eq!(EncodedCall::decode_result::<add>(&out).unwrap(), i + 10);
        let gone = invoke("gone::task", 0, &[]).unwrap_err();
        assert!(matches!(gone, TaskFault::UnknownTask { .. }), "{gone:?}");
        // The signature is still checked against the task found.
        let wrong = invoke(add::NAME, square::SIGNATURE, &two(1, 1).args).unwrap_err();
        assert!(
            matches!(wrong, TaskFault::SignatureMismatch { .. }),
            "{wrong:?}"
        );
    }
}

/// `invoke_into` appends each result to one buffer; a call that fails
/// leaves the buffer as it was, whatever the fault.
#[test]
fn invoke_into_appends_results_and_leaves_nothing_on_a_fault() {
    let mut out = vec![0xff];
    let sq = EncodedCall::new(&square::call(12)).unwrap();
    invoke_into(&sq.name, square::SIGNATURE, &sq.args, &mut out).unwrap();
    let first = out.len();
    assert_eq!(
        EncodedCall::decode_result::<square>(&out[1..]).unwrap(),
        144
    );
    let faults = [
        invoke_into("gone::task", 0, &[], &mut out).unwrap_err(),
        invoke_into(&sq.name, add::SIGNATURE, &sq.args, &mut out).unwrap_err(),
        invoke_into(&sq.name, square::SIGNATURE, b"\xc1", &mut out).unwrap_err(),
        {
            let boom = EncodedCall::new(&boom::call(3)).unwrap();
            invoke_into(&boom.name, boom::SIGNATURE, &boom.args, &mut out).unwrap_err()
        },
    ];
    let want = [
        TaskFault::UnknownTask {
            name: String::new(),
        },
        TaskFault::SignatureMismatch {
            name: String::new(),
            expected: 0,
            found: 0,
        },
        TaskFault::ArgDecode {
            name: String::new(),
            reason: String::new(),
        },
        TaskFault::Panicked {
            name: String::new(),
            message: String::new(),
        },
    ];
    for (got, want) in faults.iter().zip(&want) {
        let same = std::mem::discriminant(got) == std::mem::discriminant(want);
        assert!(same, "{got:?}, not {want:?}");
    }
    assert_eq!(out.len(), first, "a fault appended nothing");
    let two = EncodedCall::new(&add::call(2, 3)).unwrap();
    invoke_into(&two.name, add::SIGNATURE, &two.args, &mut out).unwrap();
    assert_eq!(EncodedCall::decode_result::<add>(&out[first..]).unwrap(), 5);
}

/// `complete_net` decodes borrowed results in place, with the checks and
/// the outcomes of `complete_invoked`.
#[test]
fn a_call_job_completes_from_borrowed_results() {
    let (job, fut) = CallJob::of_wire(add::call(4, 5), WireFormat::MessagePack);
    let out = invoke(add::NAME, add::SIGNATURE, &job.args()[0]).unwrap();
    job.complete_net(vec![Ok(&out)]);
    assert_eq!(fut.result(), Ok(9));

    let (job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    job.complete_net(vec![Err(TaskFault::UnknownTask {
        name: "gone::task".into(),
    })]);
    assert_panicked(fut, "gone::task");

    let (job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    job.complete_net(vec![Ok(b"\xc1")]);
    assert_panicked(fut, "could not be decoded");

    let (job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    job.complete_net(Vec::new());
    assert_panicked(fut, "0 outcomes came back for 1 calls");

    // A postcard job (a local pool's) has no in-place decoder: its results
    // are made owned and decoded as a pool worker's, postcard (7 as a
    // varint is the one byte 7).
    let (job, fut) = CallJob::of(add::call(1, 1));
    job.complete_net(vec![Ok(&[7])]);
    assert_eq!(fut.result(), Ok(7));
}

/// `take_args` hands the encoded arguments over and leaves the job
/// counting its calls: outcomes for them still complete it, and a wrong
/// number of outcomes is still refused.
#[test]
fn a_call_jobs_taken_arguments_leave_its_call_count() {
    let (mut job, fut) = CallJob::of_wire(add::call(4, 5), WireFormat::MessagePack);
    let args = job.take_args();
    assert_eq!(args.len(), 1);
    assert_eq!(job.args(), &[Vec::<u8>::new()]);
    let out = invoke(add::NAME, add::SIGNATURE, &args[0]);
    job.complete_invoked(vec![out]);
    assert_eq!(fut.result(), Ok(9));

    let (mut job, fut) = CallJob::of_wire(add::call(2, 2), WireFormat::MessagePack);
    let _ = job.take_args();
    assert!(job.encoded_calls().is_none());
    job.run_here();
    assert_panicked(fut, "were taken");

    let (mut job, fut) = CallJob::of_wire(add::call(1, 1), WireFormat::MessagePack);
    let _ = job.take_args();
    job.complete_invoked(Vec::new());
    assert_panicked(fut, "0 outcomes came back for 1 calls");
}

#[test]
fn a_call_job_forwards_on_cancel_to_its_future() {
    // The broker says a worker took it: the cancel is refused.
    let (job, fut) = CallJob::of_wire(add::call(1, 2), WireFormat::MessagePack);
    job.on_cancel(|| false);
    assert!(!fut.cancel());
    assert_eq!(fut.state(), State::Pending);
    job.run_here();
    assert_eq!(fut.result(), Ok(3));

    // The broker dropped it: cancelled, and the job is skipped.
    let (mut job, fut) = CallJob::of_wire(add::call(1, 2), WireFormat::MessagePack);
    job.on_cancel(|| true);
    assert!(fut.cancel());
    assert!(!job.set_running_or_notify_cancel());
    assert!(fut.cancelled());
}

// ---- futures completed from elsewhere ----

#[test]
fn set_worker_lost_names_worker_and_host() {
    let (promise, fut) = Promise::<u32>::new();
    assert!(promise.set_running_or_notify_cancel());
    let lost = WorkerLost::new(4321, Some(-9), None)
        .with_worker("w-7")
        .with_host("node3");
    promise.set_worker_lost(lost);
    let err = fut.result().unwrap_err();
    assert!(err.is_worker_lost());
    let FutureError::WorkerLost(w) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (w.worker(), w.host(), w.pid()),
        (Some("w-7"), Some("node3"), 4321)
    );
    let text = err.to_string();
    assert!(
        text.contains("w-7") && text.contains("node3") && text.contains("signal 9"),
        "{text}"
    );
    // A local pool's loss names neither.
    let local = WorkerLost::new(1, None, None);
    assert_eq!((local.worker(), local.host()), (None, None));
}

#[test]
fn set_unavailable_fails_the_future() {
    let (promise, fut) = Promise::<u32>::new();
    promise.set_unavailable();
    let err = fut.result().unwrap_err();
    assert!(err.is_unavailable() && err.is_exception(), "{err:?}");
}

#[test]
fn cancel_pending_cancels_a_pending_future() {
    let (promise, fut) = Promise::<u32>::new();
    assert!(promise.cancel_pending());
    assert!(fut.cancelled());
    assert_eq!(fut.result(), Err(FutureError::Cancelled));
}

#[test]
fn cancel_pending_finishes_a_running_future_instead_of_leaving_it() {
    let (promise, fut) = Promise::<u32>::new();
    assert!(promise.set_running_or_notify_cancel());
    assert!(!promise.cancel_pending());
    // Before, the future stayed running with no promise: this timed out.
    assert_eq!(
        fut.result_timeout(Duration::from_secs(10)),
        Err(FutureError::Cancelled)
    );
    assert_eq!(fut.state(), State::Finished);
}

#[test]
fn on_cancel_refusing_keeps_the_future_pending() {
    let (promise, fut) = Promise::<u32>::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    promise.on_cancel(move || {
        a.fetch_add(1, Ordering::SeqCst);
        false
    });
    assert!(!fut.cancel());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(fut.state(), State::Pending);
    assert!(!fut.done());
    assert!(promise.set_running_or_notify_cancel());
    promise.set_result(3).unwrap();
    assert_eq!(fut.result(), Ok(3));
    // Done: cancel does not ask any more.
    assert!(!fut.cancel());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[test]
fn on_cancel_accepting_cancels() {
    let (promise, fut) = Promise::<u32>::new();
    let broker_dropped = Arc::new(AtomicBool::new(false));
    let d = broker_dropped.clone();
    promise.on_cancel(move || {
        d.store(true, Ordering::SeqCst);
        true
    });
    assert!(fut.cancel());
    assert!(broker_dropped.load(Ordering::SeqCst));
    assert!(fut.cancelled());
    // The executor learns of it as before.
    assert!(!promise.set_running_or_notify_cancel());
    // Cancelled already: asked no more, still true.
    broker_dropped.store(false, Ordering::SeqCst);
    assert!(fut.cancel());
    assert!(!broker_dropped.load(Ordering::SeqCst));
}

#[test]
fn on_cancel_is_not_asked_once_running() {
    let (promise, fut) = Promise::<u32>::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    promise.on_cancel(move || {
        a.fetch_add(1, Ordering::SeqCst);
        true
    });
    assert!(promise.set_running_or_notify_cancel());
    assert!(!fut.cancel());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    promise.set_result(1).unwrap();
}

// ---- process::calls on every executor kind ----

#[test]
fn calls_map_gives_the_same_results_on_threads_and_processes() {
    let items: Vec<u64> = (0..50).collect();
    let threads = ThreadPoolExecutor::builder()
        .max_workers(3)
        .build()
        .unwrap();
    let on_threads: Vec<u64> = threads
        .map(process::calls(square::call), items.clone())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let procs = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let on_processes: Vec<u64> = procs
        .map(process::calls(square::call), items.clone())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<u64> = items.iter().map(|n| n * n).collect();
    assert_eq!(on_threads, expected);
    assert_eq!(on_processes, expected);
}

#[test]
fn calls_map_reports_a_panic_per_item_on_threads_as_on_processes() {
    let threads = ThreadPoolExecutor::new();
    let procs = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let t: Vec<Result<u64, String>> = threads
        .map(process::calls(boom::call), [0, 1, 0])
        .unwrap()
        .map(|r| r.map_err(|e| e.panic_message().unwrap_or_default().to_string()))
        .collect();
    let p: Vec<Result<u64, String>> = procs
        .map(process::calls(boom::call), [0, 1, 0])
        .unwrap()
        .map(|r| r.map_err(|e| e.panic_message().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(t, [Ok(0), Err("boom 1".to_string()), Ok(0)]);
    assert_eq!(t, p);
}
