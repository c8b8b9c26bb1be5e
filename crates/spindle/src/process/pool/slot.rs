//! One slot of a pool: the thread that starts a worker process, reads its
//! answers, notices when it dies (end-of-file on its connection), settles its
//! jobs, and starts the replacement. Plus the per-task time-limit watchdog.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::engine::{Engine, State, TaskStart, Worker};
use super::job::{Failure, Job};
use super::link::{self, LinkError, Rx, Tx};
use super::wire::{FromWorker, ItemOutcome, worker_call};
use crate::futures::WorkerLost;
use crate::ipc::sealed::{Mapped, MappedSlice};
use crate::process::{Process, ProcessError};

/// How long a worker that closed its connection gets to exit before it is
/// killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// While jobs take under `SPIN_BELOW` on average and the worker has at most
/// one job left, the slot thread polls its link up to `SPIN` before it
/// sleeps: the answer (or the next tiny job's) usually comes within that,
/// and waking a sleeping thread on an idle (virtual) CPU can cost tens of
/// microseconds — more than the whole round trip. With more jobs queued the
/// worker is busy anyway and the thread sleeps, letting answers pile up to
/// be read together.
const SPIN: Duration = Duration::from_micros(50);
const SPIN_BELOW: Duration = Duration::from_micros(100);

/// Starts the slot threads of a new pool: every slot's, and returns once
/// every first worker has started (or the first start error); none for a
/// pool that starts workers on demand (`dispatch` starts them).
pub(crate) fn start_slots(engine: &Arc<Engine>) -> Result<(), ProcessError> {
    let n = if engine.cfg.on_demand {
        0
    } else {
        engine.cfg.processes
    };
    let (tx, rx) = std::sync::mpsc::channel();
    for slot in 0..n {
        let mut st = engine.state.lock();
        spawn_slot(engine, &mut st, slot, Some(tx.clone())).map_err(ProcessError::io)?;
    }
    drop(tx);
    let mut first_err = None;
    for res in rx.iter().take(n) {
        if let Err(e) = res {
            first_err.get_or_insert(e);
        }
    }
    if let Some(limit) = engine.cfg.task_timeout {
        let e = engine.clone();
        thread::Builder::new()
            .name(format!("{}-watchdog", engine.cfg.name))
            .spawn(move || watchdog(&e, limit))
            .map_err(ProcessError::io)?;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// [`spawn_slot`] for a slot started on demand (the engine's `SpawnSlot`).
pub(crate) fn spawn_on_demand(
    engine: &Arc<Engine>,
    st: &mut State,
    slot: usize,
) -> std::io::Result<()> {
    spawn_slot(engine, st, slot, None)
}

/// Starts the thread of `slot` (which starts its worker), counted under the
/// caller's lock: live, in use, starting a worker.
pub(crate) fn spawn_slot(
    engine: &Arc<Engine>,
    st: &mut State,
    slot: usize,
    ready: Option<Sender<Result<(), ProcessError>>>,
) -> std::io::Result<()> {
    let e = engine.clone();
    thread::Builder::new()
        .name(format!("{}-{slot}", engine.cfg.name))
        .spawn(move || slot_main(&e, slot, ready))?;
    st.live += 1;
    st.spawned = st.spawned.max(slot + 1);
    st.starting += 1;
    Ok(())
}

/// Starts one worker process for this slot.
fn start_worker(engine: &Engine, slot: usize) -> Result<(Process, Tx, Rx), ProcessError> {
    let (tx, rx, theirs) = link::pair().map_err(ProcessError::io)?;
    // Encoding the call duplicates the worker's ends into it; ours close here
    // and the call's once the worker has started, so the worker's death is
    // end-of-file on `rx`.
    let call = worker_call(
        theirs,
        engine.cfg.initializer.clone(),
        engine.cfg.max_tasks,
        engine.cfg.max_payload,
    );
    let p = Process::builder()
        .task(call)
        .daemon(true)
        .start_method(engine.cfg.method)
        .name(format!("{}-{slot}", engine.cfg.name))
        .start()?;
    Ok((p, tx, rx))
}

fn slot_main(
    engine: &Arc<Engine>,
    slot: usize,
    mut ready: Option<Sender<Result<(), ProcessError>>>,
) {
    engine.state.lock().threads.push(thread::current().id());
    loop {
        let (mut process, tx, mut rx) = match start_worker(engine, slot) {
            Ok(x) => x,
            Err(e) => {
                engine.state.lock().starting -= 1;
                let reason = format!("a worker process could not be started: {e}");
                if let Some(tx) = ready.take() {
                    tx.send(Err(e)).ok();
                }
                engine.break_pool(reason);
                break;
            }
        };
        let pid = process.pid().unwrap_or(0);
        {
            let mut st = engine.state.lock();
            st.starting -= 1;
            st.workers[slot] = Some(Worker {
                pid,
                pipe_cap: tx.capacity(),
                tx: Arc::new(tx),
                outstanding: VecDeque::new(),
                outbox: Vec::new(),
                outbox_fds: Vec::new(),
                outbox_jobs: 0,
                writing: false,
                queued_bytes: 0,
                assigned: 0,
                front_since: Instant::now(),
                stop_sent: false,
                timed_out: None,
                completed: 0,
            });
            if st.terminated {
                // Nothing to run and nothing to lose; SIGTERM could be ignored
                // by an initializer, and `terminate` may be past its grace.
                kill(Pid::from_raw(pid as i32), Signal::SIGKILL).ok();
            } else if st.broken.is_some() {
                kill(Pid::from_raw(pid as i32), Signal::SIGTERM).ok();
            } else {
                engine.dispatch(&mut st);
            }
            engine.release(st);
            // For `wait_for_workers`.
            engine.changed.notify_all();
        }
        // Ready once listed: `build` returns with every first worker in
        // `worker_pids`.
        if let Some(tx) = ready.take() {
            tx.send(Ok(())).ok();
        }
        let mut init_failed = None;
        let mut answers: Vec<Vec<ItemOutcome>> = Vec::new();
        let mut spin = Duration::ZERO;
        loop {
            // Block for one frame, then take every frame already buffered:
            // one lock, one dispatch and one write for all of them.
            let mut end = false;
            loop {
                match rx.recv_spin::<FromWorker>(spin) {
                    Ok(FromWorker::Done(mut outs)) => {
                        if receive_shared(&rx, &mut outs).is_err() {
                            process.kill().ok();
                            end = true;
                        }
                        answers.push(outs);
                    }
                    Ok(FromWorker::DoneBulk(size, mut outs)) => {
                        if receive_bulk(&rx, size, &mut outs)
                            .and_then(|()| receive_shared(&rx, &mut outs))
                            .is_err()
                        {
                            // The socket failed under the frame: the worker
                            // cannot be trusted any more.
                            process.kill().ok();
                            end = true;
                        }
                        answers.push(outs);
                    }
                    Ok(FromWorker::InitFailed(m)) => {
                        init_failed = Some(m);
                        end = true;
                    }
                    Err(e) => {
                        if let LinkError::Garbled(_) = e {
                            // A garbled stream: the worker cannot be trusted.
                            process.kill().ok();
                        }
                        end = true;
                    }
                }
                if end || !rx.has_frame() {
                    break;
                }
            }
            if !answers.is_empty() {
                let observed = engine.cfg.on_task_start.is_some();
                let mut finished = Vec::with_capacity(answers.len());
                let mut st = engine.state.lock();
                let w = st.workers[slot].as_mut().expect("own slot");
                let now = Instant::now();
                // Jobs answered together share the time since the first began.
                let took = now.duration_since(w.front_since) / answers.len() as u32;
                // Jobs answered in one batch after its first ran from the
                // worker's read-ahead: each started without having been the
                // front at a report, so it is reported now, before any answer
                // of the batch is handed out.
                let mut started = Vec::new();
                let mut outcomes = Outcomes::default();
                for (i, outs) in answers.drain(..).enumerate() {
                    if let Some(job) = w.outstanding.pop_front() {
                        outcomes.count(&outs);
                        w.queued_bytes -= job.weight();
                        if i > 0 && observed {
                            started.push(TaskStart {
                                pid: w.pid,
                                task: job.name,
                            });
                        }
                        finished.push((job, outs));
                    }
                    w.completed += 1;
                }
                w.front_since = now;
                // The next job, already handed to the worker, starts now
                // (see `TaskStart`).
                started.extend(
                    w.outstanding
                        .front()
                        .filter(|_| w.outstanding.len() > w.outbox_jobs)
                        .map(|j| TaskStart {
                            pid: w.pid,
                            task: j.name,
                        }),
                );
                let short = w.outstanding.len() <= 1;
                outcomes.add_to(&mut st, took);
                st.ewma_job = Some(match st.ewma_job {
                    Some(avg) => (avg * 7 + took) / 8,
                    None => took,
                });
                spin = match st.ewma_job {
                    Some(avg) if short && avg < SPIN_BELOW => SPIN,
                    _ => Duration::ZERO,
                };
                engine.dispatch(&mut st);
                engine.release(st);
                engine.report_started(&started);
                for (job, outs) in finished {
                    #[cfg(feature = "tracing")]
                    if let Some(t) = &job.trace {
                        tracing::trace!(parent: &t.0, "result");
                    }
                    job.sink.finish(outs);
                }
            }
            if end {
                break;
            }
        }
        let w = engine.state.lock().workers[slot].take().expect("own slot");
        drop(rx);
        if process.join_timeout(EXIT_GRACE).is_err() && process.exitcode().is_none() {
            process.kill().ok();
            process.join().ok();
        }
        if let Some(m) = init_failed {
            engine.break_pool(format!("the pool's initializer failed: {m}"));
        }
        if !settle(engine, w, process.exitcode()) {
            break;
        }
    }
    let mut st = engine.state.lock();
    let me = thread::current().id();
    st.threads.retain(|t| *t != me);
    st.live -= 1;
    engine.changed.notify_all();
}

/// Takes the memfd of a `DoneBulk` (`size` bytes) from the link's socket,
/// maps it read-only, and replaces each `Bulk` outcome with its part. A
/// memfd that cannot be mapped fails those items; a socket that fails is an
/// error (the stream is broken).
fn receive_bulk(rx: &Rx, size: u64, outs: &mut [ItemOutcome]) -> Result<(), String> {
    let fd = rx.recv_fd().map_err(|e| e.to_string())?;
    let map = Mapped::open(fd, size as usize).map(Arc::new);
    for o in outs.iter_mut() {
        let o = o.encoding_mut();
        if let ItemOutcome::Bulk(at, len) = *o {
            let part = match &map {
                Ok(m) => MappedSlice::new(m, at, len),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            };
            *o = match part {
                Ok(p) => ItemOutcome::Mapped(p),
                Err(e) => ItemOutcome::Fault(format!("a large result could not be mapped: {e}")),
            };
        }
    }
    Ok(())
}

/// Takes the buffers of each `Shared` outcome (one sealed memfd each, in
/// order, after the frame's memfd) from the link's socket and maps them
/// read-only into its `held`. A buffer that cannot be mapped fails its
/// item; a socket that fails is an error.
fn receive_shared(rx: &Rx, outs: &mut [ItemOutcome]) -> Result<(), String> {
    for o in outs.iter_mut() {
        let ItemOutcome::Shared { bufs, held, .. } = o else {
            continue;
        };
        let mut failed = None;
        for &(_, len) in bufs.iter() {
            let fd = rx.recv_fd().map_err(|e| e.to_string())?;
            match Mapped::open(fd, len as usize) {
                Ok(m) => held.push(Arc::new(m)),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            *o = ItemOutcome::Fault(format!("a shared result buffer could not be mapped: {e}"));
        }
    }
    Ok(())
}

/// Settles the jobs of a worker that ended; returns whether to start a
/// replacement.
fn settle(engine: &Engine, w: Worker, exitcode: Option<i32>) -> bool {
    let mut outstanding = w.outstanding;
    // Jobs still in the outbox never reached the worker; a job handed to a
    // writer may have (even if the write then failed): it counts as started.
    let running = if outstanding.len() > w.outbox_jobs {
        outstanding.pop_front()
    } else {
        None
    };
    let mut st = engine.state.lock();
    let stopping = st.terminated || st.broken.is_some();
    let mut failed: Vec<(Job, Failure)> = Vec::new();
    if stopping {
        let f = match &st.broken {
            Some(b) if !st.terminated => Failure::Broken(b.clone()),
            _ => Failure::Cancelled,
        };
        failed.extend(
            running
                .into_iter()
                .chain(outstanding)
                .map(|j| (j, f.clone())),
        );
    } else {
        // Jobs sent but never started go back to the front, in order.
        for job in outstanding.into_iter().rev() {
            st.pending.push_front(job);
        }
        if let Some(mut job) = running {
            st.lost += 1;
            if job.retried < engine.cfg.retries && w.timed_out.is_none() {
                job.retried += 1;
                st.retried += 1;
                st.pending.push_front(job);
            } else {
                let lost = WorkerLost::new(w.pid, exitcode, w.timed_out);
                failed.push((job, Failure::Lost(lost)));
            }
        }
    }
    let drained = st.closed && st.pending.is_empty();
    let replace = !stopping && !drained;
    if replace {
        st.starting += 1; // the replacement, counted before `dispatch` looks
    }
    engine.dispatch(&mut st);
    engine.release(st);
    for (job, f) in failed {
        engine.fail_job(job, f);
    }
    replace
}

/// Kills the worker of any task that has run longer than `limit`.
fn watchdog(engine: &Arc<Engine>, limit: Duration) {
    let mut st = engine.state.lock();
    loop {
        // A pool that starts workers on demand has none at first: only a
        // closed pool whose slot threads all ended is done.
        if st.live == 0 && (st.closed || !engine.cfg.on_demand) {
            return;
        }
        let now = Instant::now();
        let mut next = now + limit;
        for w in st.workers.iter_mut().flatten() {
            if w.outstanding.is_empty() || w.timed_out.is_some() {
                continue;
            }
            let due = w.front_since + limit;
            if due <= now {
                w.timed_out = Some(limit);
                kill(Pid::from_raw(w.pid as i32), Signal::SIGKILL).ok();
            } else {
                next = next.min(due);
            }
        }
        engine
            .changed
            .wait_until(&mut st, next + Duration::from_millis(1));
    }
}

/// A batch of answers' outcomes, counted while the batch is sorted and
/// added to the engine's counts at once.
#[derive(Default)]
struct Outcomes {
    completed: u64,
    failed: u64,
    panicked: u64,
}

impl Outcomes {
    /// A job whose item panicked counts as panicked; one with an item that
    /// could not run or whose result was too large, as failed; else
    /// completed.
    fn count(&mut self, outs: &[ItemOutcome]) {
        let mut failed = false;
        for o in outs {
            match o.encoding() {
                ItemOutcome::Panicked(_) => {
                    self.panicked += 1;
                    return;
                }
                ItemOutcome::Fault(_) | ItemOutcome::TooLarge { .. } => failed = true,
                ItemOutcome::Ok(_)
                | ItemOutcome::Bulk(..)
                | ItemOutcome::Mapped(_)
                | ItemOutcome::Shared { .. } => {}
            }
        }
        if failed {
            self.failed += 1;
        } else {
            self.completed += 1;
        }
    }

    /// Adds the counts, and `took` once per job answered, to the engine's.
    fn add_to(&self, st: &mut State, took: Duration) {
        st.completed += self.completed;
        st.answered_failed += self.failed;
        st.panicked += self.panicked;
        let n = self.completed + self.failed + self.panicked;
        st.times.record_n(crate::stats::nanos(took), n);
    }
}
