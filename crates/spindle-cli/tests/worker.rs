//! `spindle worker`: a cluster worker process of spindle's own tasks, fed
//! by a manager server's broker; it drains and exits 0 on SIGTERM.

mod common {
    pub(crate) mod redis;
}

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::redis::Redis;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use spindle::futures::Executor;
use spindle::manager::{BaseManager, BrokerProxy, Typeid};
use spindle::process::EncodedCall;
use spindle_cluster::{ClusterExecutor, EmbeddedBroker};

const KEY: &[u8] = b"worker-tests-key-0123456789abcdef";
const LONG: Duration = Duration::from_secs(60);

fn spindle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
}

/// The tasks `spindle worker --list` names, with their signatures.
fn listed() -> BTreeMap<String, u64> {
    let out = spindle().args(["worker", "--list"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, sig) = l.split_once(' ').unwrap();
            (name.to_string(), u64::from_str_radix(sig, 16).unwrap())
        })
        .collect()
}

/// A job entry and a result message as the cluster writes them.
#[derive(Serialize)]
struct RawJob {
    client: String,
    job: u64,
    calls: Vec<EncodedCall>,
}

#[derive(Deserialize, Debug)]
enum RawMessage {
    Started {
        job: u64,
    },
    Done {
        job: u64,
        outcomes: Vec<Result<ByteBuf, serde::de::IgnoredAny>>,
    },
}

#[spindle::task]
fn only_in_the_test_binary(x: u64) -> u64 {
    x
}

#[test]
fn spindle_worker_runs_spindles_tasks_and_drains_on_sigterm() {
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("spindle-worker-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kf = dir.join("key");
    std::fs::write(&kf, KEY).unwrap();
    let mut child = spindle()
        .args([
            "worker",
            "--broker",
            &server.address().to_string(),
            "--authkey-file",
        ])
        .arg(&kf)
        .args(["--concurrency", "1", "--lease", "5"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // A task of spindle's, by its listed name and signature: 15 has the
    // odd divisor 3.
    let name = "spindle_workloads::processes::has_odd_divisor";
    let sig = listed()[name];
    let job = RawJob {
        client: "test".into(),
        job: 7,
        calls: vec![EncodedCall {
            name: name.into(),
            signature: sig,
            args: rmp_serde::to_vec(&(15u64, 3u64, 3u64)).unwrap(),
        }],
    };
    let m = server.connect().unwrap();
    let b: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    b.put(&ByteBuf::from(rmp_serde::to_vec_named(&job).unwrap()))
        .unwrap();
    let mut done = None;
    while done.is_none() {
        for bytes in b.results::<ByteBuf>("test", 10, LONG).unwrap() {
            match rmp_serde::from_slice::<RawMessage>(&bytes).unwrap() {
                RawMessage::Started { job } => assert_eq!(job, 7),
                RawMessage::Done { job, outcomes } => done = Some((job, outcomes)),
            }
        }
    }
    let (job, outcomes) = done.unwrap();
    assert_eq!(job, 7);
    let value: bool = rmp_serde::from_slice(outcomes[0].as_ref().unwrap()).unwrap();
    assert!(value);

    // A task this binary does not have: dead-lettered, the future says why.
    let broker = EmbeddedBroker::connect(server.address().clone(), KEY, "tasks").unwrap();
    let ex = ClusterExecutor::builder(Arc::new(broker)).build();
    let e = ex
        .submit(only_in_the_test_binary::call(1))
        .unwrap()
        .result_timeout(LONG)
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("only_in_the_test_binary"),
        "{e:?}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(
        err.contains("stopped: 1 done, 0 stale, 1 dead-lettered"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spindle_worker_bad_arguments_exit_2() {
    let out = spindle()
        .args(["worker", "--broker", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = spindle()
        .args([
            "worker",
            "--broker",
            "127.0.0.1:1",
            "--authkey-file",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
    for (flag, value) in [("--prefetch", "10001"), ("--mode", "fibers")] {
        let out = spindle()
            .args(["worker", "--broker", "redis://127.0.0.1:1", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn spindle_worker_serves_a_redis_broker() {
    let redis = Redis::start("worker");
    let broker = redis.broker(LONG);
    let child = spindle()
        .args([
            "worker",
            "--broker",
            &redis.url(),
            "--concurrency",
            "1",
            "--prefetch",
            "3",
            "--mode",
            "processes",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = dead_letters_then_drains(broker, child);
    // The flags reached the worker: its start line says so.
    assert!(err.contains("with 1 processes, prefetch 3"), "{err}");
}

/// Submits a task the spindle binary does not have: the worker (`child`,
/// stderr piped) dead-letters it and the caller learns why, through the
/// broker; then SIGTERM drains it, and it exits 0 saying so. Its stderr.
fn dead_letters_then_drains(broker: spindle_cluster::RedisBroker, mut child: Child) -> String {
    let ex = ClusterExecutor::builder(Arc::new(broker)).build();
    let e = ex
        .submit(only_in_the_test_binary::call(1))
        .unwrap()
        .result_timeout(LONG)
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("only_in_the_test_binary"),
        "{e:?}"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("1 dead-lettered"), "{err}");
    err
}

#[test]
fn spindle_worker_serves_a_redis_broker_over_mutual_tls() {
    let redis = Redis::start_tls("worker-tls");
    redis.broker(LONG); // the server answers
    let broker =
        spindle_cluster::RedisBroker::connect_with(&redis.tls_url(), "tasks", &redis.tls())
            .unwrap();
    let child = spindle()
        .args(["worker", "--broker", &redis.tls_url(), "--concurrency", "1"])
        .args(redis.tls_flags())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dead_letters_then_drains(broker, child);
}
