//! Chaos: workers killed with SIGKILL while they hold tasks, a Redis
//! server restarted under them. Delivery is at least once, so the tests
//! assert what must hold — no task lost (every future gets its own value),
//! the broker's `unfinished` back to 0 (`join` returns), nothing
//! dead-lettered — and count what may happen: tasks run more than once
//! (printed, not bounded).
//!
//! The Redis tests need `redis-server` (`.ci/run` installs it).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::futures::{Executor, Future, FutureError, as_completed_deadline};
use spindle::manager::{BaseManager, BrokerProxy, Server, Typeid};
use spindle::process::Process;
use spindle_cluster::{Broker, ClusterExecutor, TaskOptions};

mod common;

use common::{BrokerAt, LONG, worker_child};

/// One task of the soak: notes that it ran (before its work, so that a
/// run killed midway counts too), works a moment, and says which worker
/// process ran it.
#[spindle::task]
fn soak_task(n: u64, log: PathBuf) -> (u64, u32) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log)
        .unwrap();
    // One short write with O_APPEND: lines of concurrent runs never mix.
    f.write_all(format!("{n}\n").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    (n, std::process::id())
}

/// What a soak does.
struct Plan {
    tasks: u64,
    workers: usize,
    /// Threads of each worker process.
    concurrency: usize,
    kills: usize,
    options: TaskOptions,
}

impl Plan {
    /// The soak: 2,000 tasks, 3 workers, 5 kills. The lease is
    /// short (a killed worker's tasks wait that long), `max_deliveries`
    /// high: a task caught by several kills must still not be given up
    /// (what is tested is that nothing is lost, not the retry limit).
    fn ci() -> Plan {
        Plan {
            tasks: 2000,
            workers: 3,
            concurrency: 2,
            kills: 5,
            options: TaskOptions {
                lease: Duration::from_secs(1),
                max_deliveries: 20,
                ..TaskOptions::default()
            },
        }
    }
}

/// What a soak saw.
#[derive(Debug)]
struct Report {
    lost: u64,
    /// Runs past the first of each task.
    duplicate_runs: u64,
    /// Tasks that ran more than once.
    tasks_rerun: u64,
    kills: usize,
    secs: f64,
}

/// A unique file for the runs' log.
fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "spindle-chaos-{name}-{}-{:x}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_u64())
    ))
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Runs `plan` on workers that `start(slot)` starts (worker `slot` of
/// `plan.workers`; `broker` is the executor's side of their broker):
/// submits every task, kills a worker (SIGKILL) at each of
/// `plan.kills` evenly spaced points of progress — the worker that
/// reported the latest result, by its pid, or if it is dead already the
/// first one alive in the list — and starts a new one in its
/// place, calls `midway` once half the tasks are done, and checks every
/// result. `join` is the broker's wait for `unfinished` to reach 0.
fn soak(
    name: &str,
    plan: &Plan,
    start: &dyn Fn(usize) -> Process,
    broker: Arc<dyn Broker>,
    midway: &mut dyn FnMut(),
    join: &dyn Fn(Duration) -> bool,
) -> Report {
    let started = Instant::now();
    let log = log_path(name);
    let mut workers: Vec<(usize, Process)> = (0..plan.workers).map(|i| (i, start(i))).collect();
    let ex = ClusterExecutor::builder(broker.clone())
        .max_workers(plan.workers * plan.concurrency)
        .options(plan.options)
        .build();
    let futures: Vec<Future<(u64, u32), _>> = (0..plan.tasks)
        .map(|n| ex.submit(soak_task::call(n, log.clone())).unwrap())
        .collect();
    // Kills at evenly spaced counts of results; the restart halfway.
    let mut kill_at: Vec<u64> = (1..=plan.kills as u64)
        .map(|k| plan.tasks * k / (plan.kills as u64 + 1))
        .collect();
    kill_at.reverse();
    let mut midway_done = false;
    let mut kills = 0;
    let mut done = 0u64;
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut failed: Vec<FutureError> = Vec::new();
    let deadline = Instant::now() + LONG;
    for f in as_completed_deadline(&futures, deadline) {
        let f = f.unwrap_or_else(|t| {
            let runs = std::fs::read_to_string(&log).unwrap_or_default();
            let stuck: Vec<(u64, bool, usize)> = futures
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.done())
                .map(|(n, f)| {
                    let ran = runs.lines().filter(|l| *l == n.to_string()).count();
                    (n as u64, f.running(), ran)
                })
                .collect();
            panic!(
                "{name}: tasks never finished: {t:?}; (task, running, runs): {stuck:?}; \
                 broker {:?}",
                broker.counts()
            )
        });
        done += 1;
        let pid = match f.result() {
            Ok((n, pid)) => {
                *seen.entry(n).or_default() += 1;
                Some(pid)
            }
            Err(e) => {
                failed.push(e);
                None
            }
        };
        // The worker that reported this result, if it still lives; else
        // the first one alive in the list (with prefetching workers the results are
        // read well behind the work: the latest one read may come from a
        // worker killed already).
        if let Some(pid) = pid
            && kill_at.last().is_some_and(|&k| done >= k)
            && let Some(i) = workers
                .iter()
                .position(|(_, w)| w.pid() == Some(pid))
                .or((!workers.is_empty()).then_some(0))
        {
            kill_at.pop();
            let (slot, mut w) = workers.swap_remove(i);
            w.kill().unwrap();
            // join says how it ended: SIGKILL.
            let _ = w.join_timeout(LONG);
            assert_eq!(w.exitcode(), Some(-9), "{name}: not killed by SIGKILL");
            kills += 1;
            workers.push((slot, start(slot)));
        }
        if !midway_done && done >= plan.tasks / 2 {
            midway_done = true;
            midway();
        }
    }
    assert!(
        join(LONG),
        "{name}: join did not return: {:?}",
        broker.counts()
    );
    ex.shutdown(true, false);
    let counts = broker.counts().unwrap();
    for (_, mut w) in workers {
        let _ = w.kill();
        let _ = w.join_timeout(LONG);
    }
    // Every run of every task, from the log.
    let mut runs: HashMap<u64, u64> = HashMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        *runs.entry(line.parse().unwrap()).or_default() += 1;
    }
    let _ = std::fs::remove_file(&log);
    let ok = seen.len() as u64;
    let report = Report {
        lost: plan.tasks - ok,
        duplicate_runs: runs.values().map(|r| r - 1).sum(),
        tasks_rerun: runs.values().filter(|&&r| r > 1).count() as u64,
        kills,
        secs: started.elapsed().as_secs_f64(),
    };
    println!(
        "{name}: {} tasks, {} workers, {} kills: {} lost, {} duplicate runs ({} tasks ran \
         more than once), {:.1} s; broker {counts:?}",
        plan.tasks,
        plan.workers,
        report.kills,
        report.lost,
        report.duplicate_runs,
        report.tasks_rerun,
        report.secs
    );
    assert!(failed.is_empty(), "{name}: futures failed: {failed:?}");
    assert_eq!(report.lost, 0, "{name}: {report:?}");
    assert!(seen.values().all(|&c| c == 1), "{name}: a result twice");
    assert!(
        (0..plan.tasks).all(|n| runs.contains_key(&n)),
        "{name}: a task never ran"
    );
    assert_eq!(report.kills, plan.kills, "{name}: {report:?}");
    assert_eq!(
        (counts.unfinished, counts.dead_total, counts.in_flight),
        (0, 0, 0),
        "{name}: {counts:?}"
    );
    report
}

const KEY: &[u8] = b"chaos-tests-key-0123456789abcdef";

fn embedded_server() -> Server {
    BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap()
}

fn embedded_at(s: &Server) -> BrokerAt {
    BrokerAt::Embedded {
        address: s.address().to_string(),
        key: KEY.to_vec(),
        name: "tasks".into(),
    }
}

/// The soak on the embedded broker (no restart: it lives in memory).
#[test]
fn cluster_chaos_soak_embedded() {
    let s = embedded_server();
    let at = embedded_at(&s);
    let broker = at.connect();
    let m = s.connect().unwrap();
    let proxy: BrokerProxy<serde_bytes::ByteBuf> = m.get("tasks").unwrap();
    let plan = Plan::ci();
    soak(
        "cluster_chaos_soak_embedded",
        &plan,
        &|_| worker_child(&at, plan.concurrency, plan.options),
        broker,
        &mut || {},
        &|d| proxy.join_timeout(d).unwrap(),
    );
}

/// Waits until the broker's `unfinished` is 0 (what `join` waits for).
fn unfinished_zero(b: &dyn Broker, within: Duration) -> bool {
    let since = Instant::now();
    loop {
        if matches!(b.counts(), Ok(c) if c.unfinished == 0) {
            return true;
        }
        if since.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(feature = "redis")]
mod redis_backend {
    use super::*;
    use common::redis_server::RedisServer;

    /// The soak on Redis, with a graceful restart of the server halfway
    /// (`appendonly yes`, `appendfsync always`): workers and the executor
    /// reconnect, nothing is lost.
    #[test]
    fn cluster_chaos_soak_redis() {
        let mut s = RedisServer::start_durable();
        let at = s.at();
        let broker = at.connect();
        let b2 = broker.clone();
        let mut restarts = 0;
        let old_pid = s.pid();
        let plan = Plan::ci();
        soak(
            "cluster_chaos_soak_redis",
            &plan,
            &|_| worker_child(&at, plan.concurrency, plan.options),
            broker,
            &mut || {
                s.restart_gracefully();
                restarts += 1;
            },
            &|d| unfinished_zero(&*b2, d),
        );
        assert_eq!(restarts, 1);
        assert_ne!(s.pid(), old_pid);
    }

    /// A worker keeps working after its Redis server restarts, even an
    /// empty one (no persistence: the stream and its consumer group are
    /// gone): it makes the group again and serves the next task (apalis
    /// PR #492, workers that stayed unregistered).
    #[test]
    fn redis_restart_worker_reregisters() {
        let mut s = RedisServer::start();
        let options = TaskOptions {
            lease: Duration::from_secs(5),
            ..TaskOptions::default()
        };
        let mut w = worker_child(&s.at(), 1, options);
        let ex = ClusterExecutor::builder(Arc::new(s.broker()))
            .options(options)
            .build();
        let log = log_path("reregisters");
        let first = ex.submit(soak_task::call(1, log.clone())).unwrap();
        let (_, pid) = first.result_timeout(LONG).unwrap();
        assert_eq!(Some(pid), w.pid());
        s.kill();
        s.launch();
        let second = ex.submit(soak_task::call(2, log.clone())).unwrap();
        assert_eq!(second.result_timeout(LONG), Ok((2, pid)));
        assert!(w.is_alive());
        let _ = w.kill();
        let _ = w.join_timeout(LONG);
        let _ = std::fs::remove_file(&log);
        assert!(unfinished_zero(&s.broker(), LONG));
    }
}

/// Other hosts, simulated: the broker and each worker in a network
/// namespace of its own, the executor (this test's thread) in another,
/// joined by veth pairs to a bridge in the broker's namespace, on a
/// private /24 — made by the test, removed when it ends, with names unique
/// to the run. Workers reach the broker at its namespace address (it binds
/// only that address: loopback cannot reach it).
///
/// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN, for `ip netns` and
/// `setns`) and iproute2's `ip`. CI runs as root, where the test is
/// required. Run as another user it fails, saying so, unless
/// `SPINDLE_SKIP_NETNS=1` is set: then it prints that it was skipped and
/// passes (for a developer's machine only).
mod multihost {
    use super::*;
    use std::fs::File;
    use std::process::Command;

    use nix::sched::{CloneFlags, setns};

    const SKIP_ENV: &str = "SPINDLE_SKIP_NETNS";
    const PORT: u16 = 5555;

    fn ip(args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    }

    /// Joins this thread (and the threads it starts later) to network
    /// namespace `name`.
    fn enter(name: &str) {
        let ns = File::open(format!("/var/run/netns/{name}")).unwrap();
        setns(ns, CloneFlags::CLONE_NEWNET).unwrap();
    }

    /// The namespaces, the bridge and the veth pairs of one run.
    struct Lab {
        tag: String,
        /// 10.213.N: the /24's first three bytes.
        net: String,
        names: Vec<String>,
    }

    impl Lab {
        fn broker_ns(&self) -> String {
            format!("sp-{}-b", self.tag)
        }
        fn worker_ns(&self, i: usize) -> String {
            format!("sp-{}-w{i}", self.tag)
        }
        fn client_ns(&self) -> String {
            format!("sp-{}-c", self.tag)
        }
        fn broker_address(&self) -> String {
            format!("{}.1:{PORT}", self.net)
        }

        fn new(workers: usize) -> Lab {
            let tag = format!("{:06x}", rand_u64() & 0xff_ffff);
            // A /24 no route of this host uses yet.
            let routes = String::from_utf8(
                Command::new("ip")
                    .args(["-4", "route", "show", "table", "all"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap();
            let net = (0..)
                .map(|_| format!("10.213.{}", rand_u64() % 250))
                .find(|n| !routes.contains(&format!("{n}.")))
                .unwrap();
            let mut lab = Lab {
                tag,
                net,
                names: Vec::new(),
            };
            let b = lab.broker_ns();
            ip(&["netns", "add", &b]);
            lab.names.push(b.clone());
            ip(&["-n", &b, "link", "set", "lo", "up"]);
            ip(&["-n", &b, "link", "add", "br0", "type", "bridge"]);
            ip(&[
                "-n",
                &b,
                "addr",
                "add",
                &format!("{}.1/24", lab.net),
                "dev",
                "br0",
            ]);
            ip(&["-n", &b, "link", "set", "br0", "up"]);
            let mut hosts: Vec<(String, String)> = (0..workers)
                .map(|i| (lab.worker_ns(i), format!("{}.{}", lab.net, 10 + i)))
                .collect();
            hosts.push((lab.client_ns(), format!("{}.200", lab.net)));
            for (i, (ns, addr)) in hosts.iter().enumerate() {
                ip(&["netns", "add", ns]);
                lab.names.push(ns.clone());
                let (here, there) = (format!("sp{}h{i}", lab.tag), format!("sp{}b{i}", lab.tag));
                ip(&["link", "add", &here, "type", "veth", "peer", "name", &there]);
                ip(&["link", "set", &here, "netns", ns]);
                ip(&["link", "set", &there, "netns", &b]);
                ip(&["-n", ns, "link", "set", "lo", "up"]);
                ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", &here]);
                ip(&["-n", ns, "link", "set", &here, "up"]);
                ip(&["-n", &b, "link", "set", &there, "master", "br0"]);
                ip(&["-n", &b, "link", "set", &there, "up"]);
            }
            lab
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            // Deleting a namespace deletes its ends of the veth pairs,
            // and so the pairs.
            for ns in &self.names {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
    }

    /// The embedded broker's server, bound to `address` in namespace `ns`,
    /// until killed.
    #[spindle::task]
    fn broker_host(ns: String, address: String, key: Vec<u8>) {
        enter(&ns);
        let _server = BaseManager::builder()
            .register("tasks", Typeid::broker())
            .bind(address.parse::<SocketAddr>().unwrap())
            .authkey(&key)
            .spawn()
            .unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }

    /// A worker process in namespace `ns` (as `common::worker_process`).
    #[spindle::task]
    fn worker_host(ns: String, at: BrokerAt, concurrency: usize, lease_ms: u64) {
        enter(&ns);
        common::worker_process(at, concurrency, lease_ms);
    }

    #[test]
    fn cluster_multihost() {
        if !is_root() {
            if std::env::var_os(SKIP_ENV).is_some_and(|v| v == "1") {
                println!("cluster_multihost: skipped ({SKIP_ENV}=1, not root)");
                return;
            }
            panic!(
                "cluster_multihost needs root (ip netns, setns: CAP_NET_ADMIN, CAP_SYS_ADMIN); \
                 CI runs it as root. Set {SKIP_ENV}=1 to skip it on a machine where you are not"
            );
        }
        let plan = Plan {
            tasks: 600,
            kills: 2,
            ..Plan::ci()
        };
        let lab = Lab::new(plan.workers);
        let mut broker = Process::builder()
            .task(broker_host::call(
                lab.broker_ns(),
                lab.broker_address(),
                KEY.to_vec(),
            ))
            .daemon(true)
            .start()
            .unwrap();
        let at = BrokerAt::Embedded {
            address: lab.broker_address(),
            key: KEY.to_vec(),
            name: "tasks".into(),
        };
        // This thread is the client host from here on (the executor's
        // threads start after, in the same namespace).
        enter(&lab.client_ns());
        let b = at.connect();
        let lease_ms = u64::try_from(plan.options.lease.as_millis()).unwrap();
        let start = |i: usize| {
            Process::builder()
                .task(worker_host::call(
                    lab.worker_ns(i),
                    at.clone(),
                    plan.concurrency,
                    lease_ms,
                ))
                .daemon(true)
                .start()
                .unwrap()
        };
        let b2 = b.clone();
        let report = soak("cluster_multihost", &plan, &start, b, &mut || {}, &|d| {
            unfinished_zero(&*b2, d)
        });
        assert_eq!(report.lost, 0);
        let _ = broker.kill();
        let _ = broker.join_timeout(LONG);
        drop(lab);
    }
}
