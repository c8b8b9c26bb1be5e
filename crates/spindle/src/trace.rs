//! A task's trace context across processes (feature `tracing`).
//!
//! `tracing` spans live in one process: a span's parent is a span of the
//! same subscriber. A task sent to another process (a cluster worker, on
//! another host) cannot name its submitter's span as a parent, so spindle
//! records one id scheme on both sides, as fields of the `spindle.task`
//! spans, and carries it with the task:
//!
//! - `trace_id`: 32 lowercase hex digits (16 bytes), the same on every span
//!   of one trace: a submit, its run on a worker, and any task that run
//!   submits in turn;
//! - `span_id`: 16 hex digits (8 bytes), this span's own, random;
//! - `parent_id`: 16 hex digits, the `span_id` of the span it comes from (a
//!   worker's span: the submit's span), or empty for a trace's first span.
//!
//! These are the W3C Trace Context sizes, and the task carries them as a
//! W3C `traceparent` string (`00-TRACE_ID-SPAN_ID-01`), so a subscriber
//! that exports to OpenTelemetry can map them one to one. A subscriber
//! that shows one trace joins the spans by `trace_id` and
//! `parent_id` → `span_id`.
//!
//! On the submitting side, [`submit_span`] opens the `spindle.task` span
//! (in the trace of the remote task this thread is running, if any, else
//! a new trace); on the worker, [`RemoteSpan::new`] opens the run's span
//! from the `traceparent` the task carried, and entering it makes it the
//! thread's [`TraceContext::current`] so that tasks submitted from there
//! join the same trace.

use std::cell::Cell;
use std::fmt;

/// A span's place in a trace: its trace id and its own span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

thread_local! {
    /// The remote task's context this thread is running in, if any.
    static CURRENT: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: a counter mixed with the pid and the clock, unique
        // enough for ids that only join spans.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ (u64::from(std::process::id()) << 32) ^ N.fetch_add(1, Ordering::Relaxed);
    }
    // W3C: an all-zero id is invalid.
    u64::from_le_bytes(b).max(1)
}

impl TraceContext {
    /// A new span id in the trace this thread is in (the remote task it
    /// runs), or the first span of a new trace.
    pub fn new_span() -> TraceContext {
        match TraceContext::current() {
            Some(c) => c.child(),
            None => TraceContext {
                trace_id: (u128::from(random_u64()) << 64) | u128::from(random_u64()),
                span_id: random_u64(),
            },
        }
    }

    /// A new span id in the same trace.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: random_u64(),
        }
    }

    /// The context of the remote task this thread is running (inside an
    /// entered [`RemoteSpan`]), if any.
    pub fn current() -> Option<TraceContext> {
        CURRENT.with(Cell::get)
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// This span's id: 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// The W3C `traceparent` of this span: `00-TRACE_ID-SPAN_ID-01`.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// The context a W3C `traceparent` names (version `00`; any flags);
    /// `None` if it is not one (then the worker starts a new trace).
    pub fn from_traceparent(s: &str) -> Option<TraceContext> {
        let mut parts = s.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |p: &str, n: usize| {
            p.len() == n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if parts.next().is_some()
            || version != "00"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext { trace_id, span_id })
    }
}

/// Opens the `spindle.task` span (level DEBUG) of a task about to be sent
/// to another process: fields `executor`, `task` (its name), `trace_id`,
/// `span_id`, `parent_id` (the span of the remote task this thread runs,
/// else empty). Send [`TraceContext::traceparent`] of the context
/// returned with the task.
pub fn submit_span(executor: &'static str, task: &str) -> (tracing::Span, TraceContext) {
    let parent = TraceContext::current();
    let ctx = TraceContext::new_span();
    let span = tracing::debug_span!(
        "spindle.task",
        executor,
        task,
        trace_id = %ctx.trace_id(),
        span_id = %ctx.span_id(),
        parent_id = %parent.map(|p| p.span_id()).unwrap_or_default(),
    );
    (span, ctx)
}

/// The span of a task run here for another process: `spindle.task`
/// (level DEBUG) with `executor`, `task`, `worker`, and the ids of a span
/// of the sender's trace whose parent is the sender's span.
#[derive(Debug, Clone)]
pub struct RemoteSpan {
    span: tracing::Span,
    ctx: TraceContext,
}

impl RemoteSpan {
    /// The span of a run of `task` for a sender whose `traceparent` came
    /// with the task (`None`, or one that does not parse: a new trace, no
    /// parent).
    pub fn new(
        executor: &'static str,
        task: &str,
        worker: &str,
        traceparent: Option<&str>,
    ) -> RemoteSpan {
        let parent = traceparent.and_then(TraceContext::from_traceparent);
        let ctx = match parent {
            Some(p) => p.child(),
            None => TraceContext::new_span(),
        };
        let span = tracing::debug_span!(
            "spindle.task",
            executor,
            task,
            worker,
            trace_id = %ctx.trace_id(),
            span_id = %ctx.span_id(),
            parent_id = %parent.map(|p| p.span_id()).unwrap_or_default(),
        );
        RemoteSpan { span, ctx }
    }

    /// The span.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Its context.
    pub fn context(&self) -> TraceContext {
        self.ctx
    }

    /// Enters the span and makes its context this thread's
    /// [`TraceContext::current`] until the guard is dropped.
    pub fn enter(&self) -> RemoteGuard<'_> {
        let previous = CURRENT.with(|c| c.replace(Some(self.ctx)));
        RemoteGuard {
            _entered: self.span.enter(),
            previous,
        }
    }
}

/// An entered [`RemoteSpan`] (see [`RemoteSpan::enter`]).
#[derive(Debug)]
pub struct RemoteGuard<'a> {
    _entered: tracing::span::Entered<'a>,
    previous: Option<TraceContext>,
}

impl Drop for RemoteGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_none() {
        let c = TraceContext::new_span();
        assert_eq!(TraceContext::from_traceparent(&c.traceparent()), Some(c));
        assert_eq!(c.trace_id().len(), 32);
        assert_eq!(c.span_id().len(), 16);
        let child = c.child();
        assert_eq!(child.trace_id(), c.trace_id());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
        let w3c = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(
            TraceContext::from_traceparent(w3c).unwrap().traceparent(),
            w3c
        );
    }

    #[test]
    fn a_remote_span_is_current_while_entered() {
        assert_eq!(TraceContext::current(), None);
        let sender = TraceContext::new_span();
        let r = RemoteSpan::new("test", "t", "w", Some(&sender.traceparent()));
        {
            let _g = r.enter();
            assert_eq!(TraceContext::current(), Some(r.context()));
            // A submit from inside joins the trace.
            let (_, inner) = submit_span("test", "u");
            assert_eq!(inner.trace_id(), sender.trace_id());
        }
        assert_eq!(TraceContext::current(), None);
        assert_eq!(r.context().trace_id(), sender.trace_id());
        assert_ne!(r.context().span_id(), sender.span_id());
    }
}
