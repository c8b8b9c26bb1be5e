//! `dashboard_shows_live_task`: a headless Chromium loads the polling
//! page (`?poll=1`) of a running ProcessPoolExecutor's dashboard and its
//! DOM shows a worker's pid and one task pending, then running, then
//! done; a screenshot is saved to target/dashboard.png and checked.
//!
//! Needs Debian's `chromium-headless-shell` (`.ci/run` installs it), or a
//! browser named by `SPINDLE_CHROMIUM`. Without one the test fails: it
//! never passes without having looked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use spindle::process::ProcessPoolExecutor;
use spindle_dashboard::{Dashboard, TaskLog, TaskState};

use common::until;

const LONG: Duration = Duration::from_secs(60);

/// Runs (in the worker process) until `gate` exists: the test holds it
/// running for as long as it wants, and lets it end by creating the file.
#[spindle::task]
fn hold(gate: String) -> u64 {
    while !Path::new(&gate).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    1
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SPINDLE_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "SPINDLE_CHROMIUM={}: no such file", p.display());
        return p;
    }
    for p in ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "no headless Chromium: install Debian's chromium-headless-shell \
         (apt-get install -y chromium-headless-shell chromium-driver; .ci/run does) \
         or set SPINDLE_CHROMIUM to a Chromium binary"
    );
}

/// Chromium as the issue asks: root-safe, no GPU, nothing in the
/// background, a fresh profile; virtual time lets the page's first poll
/// land before the DOM is dumped.
fn browser(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dump_dom(profile: &Path, url: &str) -> String {
    String::from_utf8(browser(profile, &["--dump-dom"], url).stdout).unwrap()
}

/// The `data-state` of task `id`'s row in the dumped DOM.
fn task_state(dom: &str, id: u64) -> Option<String> {
    let needle = format!("<tr data-id=\"{id}\" data-state=\"");
    let i = dom.find(&needle)? + needle.len();
    Some(dom[i..].split('"').next()?.to_string())
}

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

/// Opens the gates on drop, so a failed assertion never leaves a held
/// task behind (the pool's drop waits for its tasks).
struct Gates(Vec<String>);

impl Drop for Gates {
    fn drop(&mut self) {
        for g in &self.0 {
            let _ = std::fs::write(g, b"");
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dashboard_shows_live_task() {
    chromium(); // fails first, before any work, if there is none
    let dir =
        Dir(std::env::temp_dir().join(format!("spindle-dash-browser-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let profile = dir.0.join("profile");
    let gate = |n: &str| dir.0.join(n).to_str().unwrap().to_string();

    let log = TaskLog::new(100);
    let pool = Arc::new(
        ProcessPoolExecutor::builder()
            .max_workers(1)
            .on_task_start(log.observer())
            .build()
            .unwrap(),
    );
    let dash = Dashboard::builder()
        .process_pool("work", &pool)
        .tasks(&log)
        .serve()
        .unwrap();
    let _gates = Gates(vec![gate("a"), gate("b")]);
    let url = format!("{}?poll=1", dash.url());
    let state = |id: u64| {
        log.recent(None, 100)
            .into_iter()
            .find(|t| t.id == id)
            .map(|t| t.state)
    };

    // A occupies the only worker; B waits behind it.
    let call_a = hold::call(gate("a"));
    let name = call_a.name();
    let a = log.submit(&*pool, name, "gate a", call_a).unwrap();
    until("task A running", LONG, || {
        state(1) == Some(TaskState::Running)
    });
    let b = log
        .submit(&*pool, name, "gate b", hold::call(gate("b")))
        .unwrap();
    let pid = pool.worker_pids()[0];

    let dom = dump_dom(&profile, &url);
    assert!(
        dom.contains(&format!("<tr data-pid=\"{pid}\">")),
        "no worker pid {pid}: {dom}"
    );
    assert_eq!(task_state(&dom, 2).as_deref(), Some("pending"), "{dom}");
    assert_eq!(task_state(&dom, 1).as_deref(), Some("running"), "{dom}");

    std::fs::write(gate("a"), b"").unwrap();
    assert_eq!(a.result(), Ok(1));
    until("task B running", LONG, || {
        state(2) == Some(TaskState::Running)
    });
    let dom = dump_dom(&profile, &url);
    assert_eq!(task_state(&dom, 2).as_deref(), Some("running"), "{dom}");
    assert_eq!(task_state(&dom, 1).as_deref(), Some("done"), "{dom}");

    std::fs::write(gate("b"), b"").unwrap();
    assert_eq!(b.result(), Ok(1));
    until("task B done in the log", LONG, || {
        state(2) == Some(TaskState::Done)
    });
    let dom = dump_dom(&profile, &url);
    assert_eq!(task_state(&dom, 2).as_deref(), Some("done"), "{dom}");

    // The screenshot: target/dashboard.png.
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard.png");
    let _ = std::fs::remove_file(&png);
    browser(
        &profile,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,800",
        ],
        &url,
    );
    check_screenshot(&png);
}

/// At least 800×600 and not one colour.
fn check_screenshot(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width >= 800 && info.height >= 600,
        "{}x{}",
        info.width,
        info.height
    );
    let px = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let pixels: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(pixels.len() > 16, "{} colours only", pixels.len());
}
