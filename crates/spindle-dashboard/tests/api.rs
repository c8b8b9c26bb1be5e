//! The dashboard's HTTP API through a raw HTTP/1.1 client: the schema of
//! /api/status, bad queries, unknown routes, tokens, actions, Host
//! checks, escaping, a slow SSE client, /metrics.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{Resp, get, metric, request, until};
use serde_json::Value;
use spindle::futures::{Executor, ThreadPoolExecutor, fallible};
use spindle::queue::Queue;
use spindle::stats::Sources;
use spindle_dashboard::{Dashboard, Error, TaskLog};

const LONG: Duration = Duration::from_secs(60);

fn pool_and_queue() -> (Arc<ThreadPoolExecutor>, Arc<Queue<u32>>, Sources) {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap(),
    );
    let q = Arc::new(Queue::new());
    let sources = Sources::new()
        .pool("work", {
            let p = pool.clone();
            move || p.stats()
        })
        .queue("jobs", {
            let q = q.clone();
            move || q.stats()
        });
    (pool, q, sources)
}

/// The shape of a JSON value: object keys (recursively) and value kinds.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[test]
fn api_status_schema() {
    let (pool, q, sources) = pool_and_queue();
    pool.submit(|| 1).unwrap().result().unwrap();
    pool.submit(fallible(|| Err::<u8, _>("no")))
        .unwrap()
        .exception();
    q.put(5).unwrap();
    let d = Dashboard::builder()
        .sources(sources.clone())
        .serve()
        .unwrap();
    let r = get(d.addr(), "/api/status");
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    // Exactly the fields of spindle::stats::Status.
    let want = serde_json::to_value(sources.snapshot()).unwrap();
    assert_eq!(shape(&v), shape(&want));
    let s: spindle::stats::Status = serde_json::from_value(v).unwrap();
    assert_eq!(s.pid, std::process::id());
    assert_eq!(s.pools["work"].tasks_completed, 1);
    assert_eq!(s.pools["work"].tasks_failed, 1);
    assert_eq!(s.queues["jobs"].qsize, 1);
    // And the other read-only routes answer JSON.
    let qs = get(d.addr(), "/api/queues").json();
    assert_eq!(qs["jobs"]["qsize"], 1);
    assert_eq!(get(d.addr(), "/api/workers").json(), Value::Array(vec![]));
    assert_eq!(get(d.addr(), "/api/dead").json(), Value::Array(vec![]));
    assert_eq!(get(d.addr(), "/api/tasks").json(), Value::Array(vec![]));
    let page = get(d.addr(), "/");
    assert_eq!(page.code, 200);
    assert!(page.body.contains("spindle dashboard"));
    assert!(page.header("content-security-policy").is_some());
}

#[test]
fn api_bad_query_400() {
    let (_p, _q, sources) = pool_and_queue();
    let d = Dashboard::builder().sources(sources).serve().unwrap();
    for path in [
        "/api/tasks?limit=1001",
        "/api/tasks?limit=0",
        "/api/tasks?limit=abc",
        "/api/tasks?limit=-5",
        "/api/tasks?state=sleeping",
        "/api/tasks?limit=1&limit=2",
        "/api/tasks?what=1",
        "/api/status?x=1",
        "/?poll=1&x=2",
    ] {
        let r = get(d.addr(), path);
        assert_eq!(r.code, 400, "{path}: {r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}"
        );
    }
    for path in [
        "/api/tasks?limit=1000",
        "/api/tasks?state=done&limit=1",
        "/api/tasks?state=",
        "/?poll=1",
    ] {
        assert_eq!(get(d.addr(), path).code, 200, "{path}");
    }
}

#[test]
fn api_unknown_route_404() {
    let (_p, _q, sources) = pool_and_queue();
    let d = Dashboard::builder().sources(sources).serve().unwrap();
    for path in ["/nope", "/api/nope", "/api/status/extra", "/../etc/passwd"] {
        let r = get(d.addr(), path);
        assert_eq!(r.code, 404, "{path}: {r:?}");
        assert_eq!(r.json()["error"], "no such route");
    }
}

#[test]
fn api_non_loopback_requires_token() {
    let (_p, _q, sources) = pool_and_queue();
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    match Dashboard::builder()
        .sources(sources.clone())
        .bind(any)
        .serve()
    {
        Err(Error::TokenRequired { bind }) => assert_eq!(bind, any),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Dashboard::builder()
            .sources(sources.clone())
            .token("a b<")
            .serve(),
        Err(Error::BadToken)
    ));
    let token = "s3cret-token_0123";
    let d = Dashboard::builder()
        .sources(sources)
        .bind(any)
        .token(token)
        .serve()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", d.addr().port()).parse().unwrap();
    let host = d.addr().to_string();
    let h = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v = vec![("Host", host.clone())];
        v.extend(extra.iter().cloned());
        v
    };
    let req = |path: &str, headers: Vec<(&'static str, String)>| -> Resp {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(addr, "GET", path, &hs)
    };
    assert_eq!(req("/api/status", h(&[])).code, 401);
    assert_eq!(req("/", h(&[])).code, 401);
    assert_eq!(
        req(
            "/api/status",
            h(&[("Authorization", "Bearer wrong".into())])
        )
        .code,
        401
    );
    assert_eq!(
        req(
            "/api/status",
            h(&[("Authorization", format!("Bearer {token}x"))])
        )
        .code,
        401
    );
    assert_eq!(req("/api/status?token=s3cret", h(&[])).code, 401);
    assert_eq!(
        req(
            "/api/status",
            h(&[("Authorization", format!("Bearer {token}"))])
        )
        .code,
        200
    );
    assert_eq!(req(&format!("/api/status?token={token}"), h(&[])).code, 200);
    assert_eq!(req(&format!("/?poll=1&token={token}"), h(&[])).code, 200);
}

#[test]
fn api_actions_need_token_and_origin() {
    let (_p, _q, sources) = pool_and_queue();
    // Read-only by default: no action, whatever the request.
    let d = Dashboard::builder()
        .sources(sources.clone())
        .serve()
        .unwrap();
    let origin = format!("http://{}", d.addr());
    let r = request(d.addr(), "POST", "/api/dead/retry", &[("Origin", &origin)]);
    assert_eq!(r.code, 403, "{r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("--allow-actions")
    );
    assert_eq!(request(d.addr(), "POST", "/api/status", &[]).code, 405);
    drop(d);

    assert!(matches!(
        Dashboard::builder()
            .sources(sources.clone())
            .allow_actions(true)
            .serve(),
        Err(Error::ActionsNeedToken)
    ));
    let token = "actions-token-42";
    let d = Dashboard::builder()
        .sources(sources)
        .token(token)
        .allow_actions(true)
        .serve()
        .unwrap();
    let auth = format!("Bearer {token}");
    let origin = format!("http://{}", d.addr());
    let post =
        |headers: &[(&str, &str)]| request(d.addr(), "POST", "/api/dead/purge", headers).code;
    assert_eq!(post(&[("Origin", &origin)]), 401, "no token");
    assert_eq!(post(&[("Authorization", &auth)]), 403, "no Origin");
    assert_eq!(
        post(&[("Authorization", &auth), ("Origin", "http://evil.example")]),
        403,
        "another Origin"
    );
    assert_eq!(post(&[("Authorization", &auth), ("Origin", &origin)]), 200);
    let r = request(
        d.addr(),
        "GET",
        "/api/dead/purge",
        &[("Authorization", &auth), ("Origin", &origin)],
    );
    assert_eq!(r.code, 405, "actions are POST only");
    // Reads still need only the token.
    assert_eq!(
        request(d.addr(), "GET", "/api/dead", &[("Authorization", &auth)]).code,
        200
    );
}

#[test]
fn api_task_name_is_escaped() {
    let (_p, _q, sources) = pool_and_queue();
    let log = TaskLog::new(100);
    let id = log.pending(
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)> & more",
    );
    log.finished(id, Some("</td><script>bad()</script>".into()));
    let d = Dashboard::builder()
        .sources(sources)
        .tasks(&log)
        .event_interval(Duration::from_millis(20))
        .serve()
        .unwrap();
    let r = get(d.addr(), "/api/tasks");
    assert_eq!(r.code, 200);
    for raw in ['<', '>', '&'] {
        assert!(!r.body.contains(raw), "a raw {raw:?} in {}", r.body);
    }
    let t = &r.json()[0];
    assert_eq!(t["name"], "<script>alert(1)</script>");
    assert_eq!(t["args"], "<img src=x onerror=alert(1)> & more");
    assert_eq!(t["error"], "</td><script>bad()</script>");
    assert_eq!(t["state"], "failed");
    // The event stream carries the same escaped JSON.
    let ev = first_event(d.addr());
    assert!(
        ev.contains("\\u003cscript\\u003e") && !ev.contains("<script>"),
        "{ev}"
    );
    // The page never builds HTML from data.
    let page = get(d.addr(), "/").body;
    assert!(!page.contains("innerHTML") && !page.contains("outerHTML"));
    assert!(!page.contains("insertAdjacentHTML") && !page.contains("document.write"));
}

/// The first SSE event's data line.
fn first_event(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    use std::io::Write;
    write!(s, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let (code, headers) = common::read_head(&mut r);
    assert_eq!(code, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "text/event-stream")
    );
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(i) = line.find("data: ") {
            return line[i + 6..].to_string();
        }
    }
}

#[test]
fn sse_slow_client_bounded() {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};
    let (_p, _q, sources) = pool_and_queue();
    // Big events: 50 tasks with long argument previews.
    let log = TaskLog::new(100);
    for i in 0..60 {
        log.pending(&format!("task-{i}"), &"x".repeat(200));
    }
    let d = Dashboard::builder()
        .sources(sources)
        .tasks(&log)
        .event_interval(Duration::from_millis(10))
        .serve()
        .unwrap();
    // A client with a tiny receive buffer that never reads.
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    socket::setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
    let SocketAddr::V4(a) = d.addr() else {
        unreachable!()
    };
    socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(a)).unwrap();
    let mut slow = TcpStream::from(fd);
    use std::io::Write;
    write!(
        slow,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        d.addr()
    )
    .unwrap();

    let metrics = || get(d.addr(), "/metrics").body;
    until("events dropped for the slow client", LONG, || {
        metric(&metrics(), "spindle_dashboard_sse_dropped_total") >= 1.0
    });
    let m = metrics();
    let (sent0, dropped0) = (
        metric(&m, "spindle_dashboard_sse_events_total"),
        metric(&m, "spindle_dashboard_sse_dropped_total"),
    );
    // 50 more events come and go while the client still reads nothing:
    // none of them is queued (its buffer is full), so memory stays put.
    until("50 more dropped", LONG, || {
        metric(&metrics(), "spindle_dashboard_sse_dropped_total") >= dropped0 + 50.0
    });
    let sent1 = metric(&metrics(), "spindle_dashboard_sse_events_total");
    assert!(
        sent1 - sent0 <= spindle_dashboard::SSE_BUFFER as f64,
        "queued {} more events to a stalled client",
        sent1 - sent0
    );
    // Another client is served meanwhile.
    assert!(first_event(d.addr()).contains("\"tasks\""));
    drop(slow);
}

#[test]
fn api_foreign_host_rejected() {
    let (_p, _q, sources) = pool_and_queue();
    let d = Dashboard::builder().sources(sources).serve().unwrap();
    let port = d.addr().port();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.2:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
    ] {
        for path in ["/", "/api/status", "/api/events", "/metrics", "/nope"] {
            let r = request(d.addr(), "GET", path, &[("Host", &host)]);
            assert_eq!(r.code, 403, "{host} {path}: {r:?}");
        }
    }
    for host in [
        d.addr().to_string(),
        format!("localhost:{port}"),
        "LOCALHOST".into(),
    ] {
        assert_eq!(
            request(d.addr(), "GET", "/api/status", &[("Host", &host)]).code,
            200,
            "{host}"
        );
    }
    // allow_host adds a name.
    let (_p, _q, sources) = pool_and_queue();
    let d = Dashboard::builder()
        .sources(sources)
        .allow_host("dash.internal")
        .serve()
        .unwrap();
    assert_eq!(
        request(d.addr(), "GET", "/api/status", &[("Host", "dash.internal")]).code,
        200
    );
}

#[test]
fn metrics_parse() {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    );
    pool.submit(|| 1).unwrap().result().unwrap();
    let q = Arc::new(Queue::<u8>::new());
    q.put(1).unwrap();
    let sources = Sources::new()
        .pool("odd \"name\"\nhere\\", {
            let p = pool.clone();
            move || p.stats()
        })
        .queue("jobs", {
            let q = q.clone();
            move || q.stats()
        });
    let d = Dashboard::builder().sources(sources).serve().unwrap();
    let r = get(d.addr(), "/metrics");
    assert_eq!(r.code, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = common::parse_metrics(&r.body);
    let find = |name: &str, labels: &[(&str, &str)]| common::find_metric(&samples, name, labels);
    let pool_name = "odd \"name\"\nhere\\";
    assert_eq!(
        find(
            "spindle_pool_tasks_total",
            &[("pool", pool_name), ("state", "completed")]
        ),
        1.0
    );
    assert_eq!(
        find("spindle_pool_tasks_submitted_total", &[("pool", pool_name)]),
        1.0
    );
    assert_eq!(find("spindle_queue_size", &[("queue", "jobs")]), 1.0);
    assert_eq!(find("spindle_queue_puts_total", &[("queue", "jobs")]), 1.0);
    assert!(find("spindle_process_uptime_seconds", &[]) >= 0.0);
    assert_eq!(find("spindle_dashboard_sse_dropped_total", &[]), 0.0);
}

#[test]
fn a_stats_socket_source_is_served_and_a_dead_one_is_a_502() {
    let (_p, q, sources) = pool_and_queue();
    q.put(9).unwrap();
    let dir = std::env::temp_dir().join(format!("spindle-dash-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = spindle::stats::serve(dir.join("s.sock"), sources).unwrap();
    let d = Dashboard::builder().socket(server.path()).serve().unwrap();
    let s: spindle::stats::Status =
        serde_json::from_value(get(d.addr(), "/api/status").json()).unwrap();
    assert_eq!(s.pid, std::process::id());
    assert_eq!(s.queues["jobs"].qsize, 1);
    assert!(
        get(d.addr(), "/metrics")
            .body
            .contains("spindle_queue_size{queue=\"jobs\"} 1")
    );
    server.close();
    let r = get(d.addr(), "/api/status");
    assert_eq!(r.code, 502, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("s.sock"),
        "{r:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
