//! Feature `tracing`: each `ThreadPoolExecutor` task is a `spindle.task`
//! span with the events `submitted` (on the submitting thread), `started`
//! and `finished` (on the worker, inside the span, with the outcome).
//! Run: `cargo test -p spindle --features tracing --test stats_tracing`.
#![cfg(feature = "tracing")]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use spindle::futures::{Executor, ThreadPoolExecutor, fallible};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What the test subscriber saw: each span's name, and each event as (span
/// id, message, outcome field).
#[derive(Default)]
struct Seen {
    spans: HashMap<u64, String>,
    events: Vec<(u64, String, String)>,
}

#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    seen: Mutex<Seen>,
}

thread_local! {
    /// The spans this thread has entered, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Collects an event's `message` and `outcome` fields.
#[derive(Default)]
struct Fields {
    message: String,
    outcome: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "outcome" => self.outcome = format!("{value:?}"),
            _ => {}
        }
    }
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let name = attrs.metadata().name().to_owned();
        self.seen.lock().unwrap().spans.insert(id, name);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let span = match event.parent() {
            Some(id) => id.into_u64(),
            None => STACK.with(|s| s.borrow().last().copied().unwrap_or(0)),
        };
        self.seen
            .lock()
            .unwrap()
            .events
            .push((span, f.message, f.outcome));
    }
    fn enter(&self, id: &Id) {
        STACK.with(|s| s.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
}

#[test]
fn thread_pool_tasks_are_spans() {
    let recorder: &'static Recorder = Box::leak(Box::default());
    tracing::subscriber::set_global_default(recorder).unwrap();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 1).unwrap().result(), Ok(1));
    assert!(
        pool.submit(fallible(|| "x".parse::<u8>()))
            .unwrap()
            .exception()
            .is_some()
    );
    let f = pool.submit(|| -> u8 { panic!("task panics") }).unwrap();
    assert!(f.exception().unwrap().is_panic());
    // Joined: every worker event is recorded.
    pool.shutdown(true, false);
    let seen = recorder.seen.lock().unwrap();
    let mut tasks: Vec<u64> = (seen.spans.iter())
        .filter(|(_, name)| *name == "spindle.task")
        .map(|(id, _)| *id)
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks.len(), 3, "one span per task");
    let outcomes = ["Completed", "Failed", "Panicked"];
    for (span, outcome) in tasks.iter().zip(outcomes) {
        let events: Vec<(&str, &str)> = (seen.events.iter())
            .filter(|(s, _, _)| s == span)
            .map(|(_, m, o)| (m.as_str(), o.as_str()))
            .collect();
        assert_eq!(
            events,
            [("submitted", ""), ("started", ""), ("finished", outcome)],
            "span {span}"
        );
    }
}
