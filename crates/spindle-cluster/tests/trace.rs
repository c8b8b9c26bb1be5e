//! Feature `tracing`: one trace across processes. The submit's
//! `spindle.task` span (this process) and the run's (a forked worker
//! process) share a `trace_id`, the run's `parent_id` is the submit's
//! `span_id` (carried in the job entry as a W3C traceparent), and the
//! events read submit → started → finished → result.
//! Run: `cargo test -p spindle-cluster --features tracing --test trace`.
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spindle::futures::Executor;
use spindle::manager::{BaseManager, Typeid};
use spindle::process::{Process, StartMethod};
use spindle_cluster::{ClusterExecutor, EmbeddedBroker, Worker};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const KEY: &[u8] = b"tracing-tests-key-0123456789abcdef";
const LONG: Duration = Duration::from_secs(60);

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

#[spindle::task]
fn traced_square(x: u64) -> u64 {
    x * x
}

#[test]
fn one_trace_spans_the_submit_and_the_run_on_another_process() {
    let recorder: &'static Recorder = Box::leak(Box::default());
    tracing::subscriber::set_global_default(recorder).unwrap();
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let broker = EmbeddedBroker::connect(server.address().clone(), KEY, "tasks").unwrap();
    let dir = std::env::temp_dir().join(format!("spindle-cluster-tracing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("worker-spans");

    // The worker: a forked process with its own copy of the recorder; it
    // runs one task, then writes what it recorded.
    let (b, f2) = (broker.clone(), file.clone());
    let mut child = Process::builder()
        .closure(move || {
            let stop = AtomicBool::new(false);
            let w = Worker::new(&b).id("traced-worker");
            std::thread::scope(|s| {
                s.spawn(|| {
                    while w.stats().done < 1 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    stop.store(true, Ordering::SeqCst);
                });
                w.run(&stop).unwrap();
            });
            std::fs::write(&f2, recorder.lines().join("\n")).unwrap();
        })
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();

    let ex = ClusterExecutor::builder(Arc::new(broker)).build();
    let f = ex.submit(traced_square::call(7)).unwrap();
    assert_eq!(f.result_timeout(LONG), Ok(49));
    child.join_timeout(LONG).unwrap();
    assert_eq!(child.exitcode(), Some(0));
    ex.shutdown(true, false);

    let here = recorder.lines();
    let there: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(here.len(), 1, "{here:?}");
    assert_eq!(there.len(), 1, "{there:?}");
    let submit: Vec<&str> = here[0].split(' ').collect();
    let run: Vec<&str> = there[0].split(' ').collect();
    let task = "trace::traced_square";
    // executor task trace_id span_id parent_id worker: events
    assert_eq!(submit[..2], ["cluster", task], "{here:?}");
    assert_eq!((submit[2].len(), submit[3].len()), (32, 16));
    assert_eq!(submit[4..], ["-", "-:", "submitted", "result"], "{here:?}");
    assert_eq!(
        run[..3],
        ["cluster", task, submit[2]],
        "same trace: {there:?}"
    );
    assert_ne!(run[3], submit[3]);
    assert_eq!(
        run[4..],
        [submit[3], "traced-worker:", "started", "finished"],
        "the run's parent is the submit: {there:?}"
    );
}
