//! Feature `tracing`: a `ProcessPoolExecutor` task is one trace across
//! the parent and its worker process. The submit's `spindle.task` span
//! (the parent) and the run's (the worker, forked, with its own copy of
//! the subscriber) share a `trace_id`; the run's `parent_id` is the
//! submit's `span_id` (carried in the job frame as a W3C traceparent).
//! Run: `cargo test -p spindle --features tracing --test trace_process`.
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use spindle::futures::Executor;
use spindle::process::{ProcessPoolExecutor, StartMethod};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Fields by name, as text.
#[derive(Default, Debug, Clone)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Each span (by id): its name and fields; each event: its span and
/// fields.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, (String, Fields)>>,
    events: Mutex<Vec<(u64, Fields)>>,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut f = Fields::default();
        attrs.record(&mut f);
        let name = attrs.metadata().name().to_owned();
        self.spans.lock().unwrap().insert(id, (name, f));
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
        self.events.lock().unwrap().push((span, f));
    }
    fn enter(&self, id: &Id) {
        STACK.with(|s| s.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
}

impl Recorder {
    /// The `spindle.task` spans as lines `executor task trace_id span_id
    /// parent_id worker: message message ...` (`-` for an empty field).
    fn lines(&self) -> Vec<String> {
        let spans = self.spans.lock().unwrap();
        let events = self.events.lock().unwrap();
        let mut out: Vec<String> = spans
            .iter()
            .filter(|(_, (name, _))| name == "spindle.task")
            .map(|(id, (_, f))| {
                let get = |k: &str| {
                    f.0.get(k)
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .unwrap_or_else(|| "-".into())
                };
                let messages: Vec<String> = events
                    .iter()
                    .filter(|(s, _)| s == id)
                    .map(|(_, e)| e.0.get("message").cloned().unwrap_or_default())
                    .collect();
                format!(
                    "{} {} {} {} {} {}: {}",
                    get("executor"),
                    get("task"),
                    get("trace_id"),
                    get("span_id"),
                    get("parent_id"),
                    get("worker"),
                    messages.join(" ")
                )
            })
            .collect();
        out.sort();
        out
    }
}

static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();

#[spindle::task]
fn traced_square(x: u64) -> u64 {
    x * x
}

/// Writes the worker's recorded `traced_square` spans to `path`.
#[spindle::task]
fn dump_spans(path: String) -> bool {
    let lines: Vec<String> = RECORDER.get().map(|r| r.lines()).unwrap_or_default();
    let mine: Vec<String> = lines
        .into_iter()
        .filter(|l| l.contains("traced_square"))
        .collect();
    std::fs::write(path, mine.join("\n")).is_ok()
}

#[test]
fn one_trace_spans_the_submit_and_the_run_in_the_worker_process() {
    let recorder: &'static Recorder = Box::leak(Box::default());
    RECORDER.set(recorder).ok();
    tracing::subscriber::set_global_default(recorder).unwrap();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(traced_square::call(7)).unwrap().result(),
        Ok(49)
    );
    let path = std::env::temp_dir().join(format!("spindle-trace-process-{}", std::process::id()));
    let p = path.to_str().unwrap().to_owned();
    assert_eq!(pool.submit(dump_spans::call(p)).unwrap().result(), Ok(true));
    pool.shutdown(true, false);
    let there: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_file(&path);
    let here: Vec<String> = recorder
        .lines()
        .into_iter()
        .filter(|l| l.contains("traced_square"))
        .collect();
    assert_eq!(here.len(), 1, "{here:?}");
    assert_eq!(there.len(), 1, "{there:?}");
    let submit: Vec<&str> = here[0].split(' ').collect();
    let run: Vec<&str> = there[0].split(' ').collect();
    let task = "trace_process::traced_square";
    // executor task trace_id span_id parent_id worker: events
    assert_eq!(submit[..2], ["process", task], "{here:?}");
    assert_eq!((submit[2].len(), submit[3].len()), (32, 16));
    assert_eq!(submit[4..], ["-", "-:", "submitted", "result"], "{here:?}");
    assert_eq!(
        run[..3],
        ["process", task, submit[2]],
        "same trace: {there:?}"
    );
    assert_ne!(run[3], submit[3]);
    assert_eq!(
        run[4], submit[3],
        "the run's parent is the submit: {there:?}"
    );
    assert_eq!(
        run[5..],
        [
            format!("{}:", pool_pid(&run)),
            "started".into(),
            "finished".into()
        ]
    );
}

/// The worker field of a run line: the worker's pid, not ours.
fn pool_pid(run: &[&str]) -> String {
    let pid = run[5].trim_end_matches(':');
    assert_ne!(pid, std::process::id().to_string(), "run in the parent");
    pid.parse::<u32>().expect("a pid").to_string()
}
