//! `RedisBroker` over TLS (`rediss://`) and with AUTH/ACL: each test
//! starts its own `redis-server` whose only TCP port is a TLS port
//! (`--port 0 --tls-port P`), with a CA and certificates made at test time
//! (rcgen) in its temporary directory, and kills it by its pid when done.
//!
//! `redis-server` must be installed, built with TLS (Debian's is; `.ci/run`
//! installs it): without it these tests fail, saying so.
#![cfg(feature = "tls")]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::futures::Executor;
use spindle::process::Process;
use spindle::queue::BlockingQueue;
use spindle_cluster::{
    Broker, BrokerError, ClusterExecutor, Queue, RedisBroker, RedisTls, WorkerCommand,
    parse_worker_args,
};

mod common;

use common::redis_server::{QUEUE, RedisServer, TlsFiles};
use common::{LONG, Workers};

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

/// `worker_main`'s command line in a process of its own: exits 0 after a
/// drain (SIGTERM), 3 if the worker says it failed.
#[spindle::task]
fn worker_main_process(args: Vec<String>) {
    let Ok(WorkerCommand::Run(a)) = parse_worker_args(&args) else {
        panic!("not a worker command line: {args:?}");
    };
    if spindle_cluster::run_worker(&a) != ExitCode::SUCCESS {
        std::process::exit(3);
    }
}

/// A refusal comes at once, not after a timeout.
const PROMPT: Duration = Duration::from_secs(10);

/// `RedisBroker::connect_with`, which must fail within `PROMPT`.
fn refused(url: &str, tls: &RedisTls) -> BrokerError {
    let since = Instant::now();
    let e = RedisBroker::connect_with(url, QUEUE, tls).unwrap_err();
    assert!(
        since.elapsed() < PROMPT,
        "{url}: took {:?}",
        since.elapsed()
    );
    e
}

#[test]
fn a_task_round_trip_over_mutual_tls() {
    let s = RedisServer::start_tls(None, true);
    let tls = s.tls_files().client();
    let b = RedisBroker::connect_with(&s.tls_url(), QUEUE, &tls).unwrap();
    let workers_b = RedisBroker::connect_with(&s.tls_url(), QUEUE, &tls).unwrap();
    let options = spindle_cluster::TaskOptions::default();
    let w = Workers::start(&workers_b, 2, options);
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    assert_eq!(
        ex.submit(square::call(7)).unwrap().result_timeout(LONG),
        Ok(49)
    );
    let fs: Vec<_> = (0..20u64)
        .map(|i| ex.submit(square::call(i)).unwrap())
        .collect();
    for (i, f) in (0..20u64).zip(fs) {
        assert_eq!(f.result_timeout(LONG), Ok(i * i));
    }
    // `join` subscribes (pub/sub) on its own connection: TLS as well.
    assert!(b.join(Some(LONG)).unwrap());
    assert_eq!(b.counts().unwrap().unfinished, 0);
    let stats = w.stop();
    assert_eq!(stats.done, 21);
    // The cluster queue takes the same settings.
    let q: Queue<String> = Queue::redis_with(&s.tls_url(), "items", 0, &tls).unwrap();
    q.put("over TLS".to_string()).unwrap();
    assert_eq!(q.get().unwrap(), "over TLS");
    // The server has no plain TCP port: every one of these went over TLS.
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query(&mut s.raw())
        .unwrap();
    assert_eq!(config, ["port", "0"]);
}

#[test]
fn worker_main_takes_the_tls_flags() {
    let s = RedisServer::start_tls(None, true);
    let f = s.tls_files();
    let args = |ca: &std::path::Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "--broker",
            &s.tls_url(),
            "--queue",
            QUEUE,
            "--concurrency",
            "2",
        ]
        .map(String::from)
        .into();
        for (flag, path) in [
            ("--tls-ca", ca),
            ("--tls-cert", &f.client_cert),
            ("--tls-key", &f.client_key),
        ] {
            a.extend([flag.to_string(), path.display().to_string()]);
        }
        a
    };
    let mut worker = Process::builder()
        .task(worker_main_process::call(args(&f.ca)))
        .daemon(true)
        .start()
        .unwrap();
    let b = RedisBroker::connect_with(&s.tls_url(), QUEUE, &f.client()).unwrap();
    let ex = ClusterExecutor::builder(Arc::new(b)).build();
    assert_eq!(
        ex.submit(square::call(9)).unwrap().result_timeout(LONG),
        Ok(81)
    );
    worker.terminate().unwrap();
    worker.join_timeout(LONG).unwrap();
    assert_eq!(worker.exitcode(), Some(0));
    // Another CA: the worker cannot connect at start, and exits 1 at once.
    let other = TlsFiles::make(&s.dir.join("other-pki"));
    let mut worker = Process::builder()
        .task(worker_main_process::call(args(&other.ca)))
        .daemon(true)
        .start()
        .unwrap();
    let joined = worker.join_timeout(LONG);
    assert_eq!(worker.exitcode(), Some(3), "{joined:?}");
}

#[test]
fn a_wrong_ca_is_refused_as_tls() {
    let s = RedisServer::start_tls(None, false);
    let other = TlsFiles::make(&s.dir.join("other-pki"));
    for tls in [
        // Another CA's certificate.
        RedisTls::new().ca_file(&other.ca),
        // The system's CAs, which do not hold the test CA.
        RedisTls::new(),
    ] {
        match refused(&s.tls_url(), &tls) {
            BrokerError::Tls(m) => assert!(m.contains("certificate"), "{tls:?}: {m}"),
            e => panic!("{tls:?}: {e:?}"),
        }
    }
    // The cluster queue says the same.
    let e = Queue::<u32>::redis_with(
        &s.tls_url(),
        "items",
        0,
        &RedisTls::new().ca_file(&other.ca),
    )
    .unwrap_err();
    assert!(matches!(e, BrokerError::Tls(_)), "{e:?}");
    // The right CA: connected.
    let tls = RedisTls::new().ca_file(&s.tls_files().ca);
    let b = RedisBroker::connect_with(&s.tls_url(), QUEUE, &tls).unwrap();
    assert_eq!(b.counts().unwrap().unfinished, 0);
}

#[test]
fn a_missing_client_certificate_is_refused_as_tls() {
    let s = RedisServer::start_tls(None, true);
    let tls = RedisTls::new().ca_file(&s.tls_files().ca);
    let e = refused(&s.tls_url(), &tls);
    assert!(matches!(e, BrokerError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[test]
fn insecure_only_when_the_url_asks() {
    let s = RedisServer::start_tls(None, false);
    let insecure = format!("{}/#insecure", s.tls_url());
    let b = RedisBroker::connect(&insecure, QUEUE).unwrap();
    b.put(b"x", 1, "c1", b"", Duration::from_secs(60)).unwrap();
    assert_eq!(b.counts().unwrap().unfinished, 1);
    // Without the fragment the certificate is checked.
    assert!(matches!(
        refused(&s.tls_url(), &RedisTls::new()),
        BrokerError::Tls(_)
    ));
}

#[test]
fn plain_and_tls_ports_mixed_up_say_so() {
    let s = RedisServer::start_tls(None, false);
    let port = s.tls.as_ref().unwrap().port;
    // A plain client at the TLS port: the server ends the connection at
    // its first bytes.
    match refused(&format!("redis://127.0.0.1:{port}"), &RedisTls::new()) {
        BrokerError::Unavailable(m) => assert!(m.contains("rediss://"), "{m}"),
        e => panic!("{e:?}"),
    }
    // A TLS client at a plain port: the server waits for the end of a
    // command line that never comes; the connection's 5 s to open run
    // out.
    let plain = RedisServer::start_tcp();
    let url = format!("rediss://127.0.0.1:{}", plain.port.unwrap());
    match refused(&url, &RedisTls::new().ca_file(&s.tls_files().ca)) {
        BrokerError::Unavailable(m) => assert!(m.contains("TLS"), "{m}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn tls_settings_that_cannot_be_used_are_refused() {
    let s = RedisServer::start_tls(None, false);
    let files = s.tls_files();
    let url = s.tls_url();
    let missing = s.dir.join("no-such-ca.pem");
    let not_pem = s.dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let other = TlsFiles::make(&s.dir.join("other-pki"));
    for (tls, says) in [
        (RedisTls::new().ca_file(&missing), "no-such-ca.pem"),
        (RedisTls::new().ca_file(&not_pem), "no PEM certificate"),
        (
            // A key of another certificate.
            RedisTls::new().client_cert(&files.client_cert, &other.client_key),
            "client certificate",
        ),
        (
            RedisTls::new().client_cert(&files.client_cert, &not_pem),
            "client key",
        ),
    ] {
        match refused(&url, &tls) {
            BrokerError::Tls(m) => assert!(m.contains(says), "{tls:?}: {m}"),
            e => panic!("{tls:?}: {e:?}"),
        }
    }
    // Settings for a URL without TLS are refused, not ignored.
    for plain in [s.url(), "redis://127.0.0.1:1".to_string()] {
        match refused(&plain, &files.client()) {
            BrokerError::Tls(m) => assert!(m.contains("rediss://"), "{plain}: {m}"),
            e => panic!("{plain}: {e:?}"),
        }
    }
}

#[test]
fn a_wrong_password_is_refused_as_auth() {
    let s = RedisServer::start_tls(Some("sesame"), false);
    let tls = RedisTls::new().ca_file(&s.tls_files().ca);
    let b = RedisBroker::connect_with(&s.tls_url(), QUEUE, &tls).unwrap();
    b.put(b"x", 1, "c1", b"", Duration::from_secs(60)).unwrap();
    let port = s.tls.as_ref().unwrap().port;
    for url in [
        format!("rediss://:wrong@127.0.0.1:{port}"),
        // No password: the server answers NOAUTH.
        format!("rediss://127.0.0.1:{port}"),
    ] {
        match refused(&url, &tls) {
            BrokerError::Auth(m) => {
                let shown = BrokerError::Auth(m.clone()).to_string();
                assert!(shown.contains("authentication"), "{url}: {shown}");
            }
            e => panic!("{url}: {e:?}"),
        }
    }
}

#[test]
fn an_acl_user_is_checked() {
    let s = RedisServer::start_tls(Some("admin-pass"), false);
    let mut admin = s.raw();
    // alice may use this queue's keys; bob only others.
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "alice",
            "on",
            ">alice-pass",
            "~{tasks}:*",
            "&{tasks}:*",
            "+@all",
        ])
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "bob",
            "on",
            ">bob-pass",
            "~other:*",
            "&*",
            "+@all",
        ])
        .query(&mut admin)
        .unwrap();
    let tls = RedisTls::new().ca_file(&s.tls_files().ca);
    let port = s.tls.as_ref().unwrap().port;
    let url = |user: &str, pass: &str| format!("rediss://{user}:{pass}@127.0.0.1:{port}");
    let alice = RedisBroker::connect_with(&url("alice", "alice-pass"), QUEUE, &tls).unwrap();
    let id = alice
        .put(b"x", 1, "c1", b"", Duration::from_secs(60))
        .unwrap();
    let got = alice.fetch(1, LONG, Duration::from_secs(30)).unwrap();
    assert_eq!(got.iter().map(|f| f.id).collect::<Vec<_>>(), [id]);
    // `join` subscribes to `{tasks}:unfinished`: the channels allowed.
    assert!(
        alice
            .ack_with_result(id, "c1", b"r", Duration::from_secs(60))
            .unwrap()
    );
    assert!(alice.join(Some(LONG)).unwrap());
    assert!(matches!(
        refused(&url("alice", "wrong"), &tls),
        BrokerError::Auth(_)
    ));
    // bob logs in, but may not touch the queue's keys: NOPERM.
    match refused(&url("bob", "bob-pass"), &tls) {
        BrokerError::Auth(m) => assert!(m.contains("NOPERM") || m.contains("permission"), "{m}"),
        e => panic!("{e:?}"),
    }
}
