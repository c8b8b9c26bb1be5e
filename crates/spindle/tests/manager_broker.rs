//! `BrokerProxy`: the manager server's task broker — at-least-once delivery
//! with leases, idempotent acks, redelivery, dead letters and `join`.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{LONG, until};
use spindle::manager::{BaseManager, BrokerProxy, Manager, Server, Typeid};

const KEY: &[u8] = b"broker-tests-key-0123456789abcdef";
const LEASE: Duration = Duration::from_secs(60);
/// A lease meant to run out during the test.
const SHORT: Duration = Duration::from_millis(50);

fn server() -> Server {
    BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap()
}

#[test]
fn put_fetch_ack_and_join() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<String> = m.get("tasks").unwrap();
    let ids = b
        .put_many(&["a".to_string(), "b".to_string(), "c".to_string()], 3)
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(b.counts().unwrap().queued, 3);
    let got = b.fetch(2, LEASE).unwrap();
    assert_eq!(
        got.iter()
            .map(|d| (d.item.as_str(), d.attempt))
            .collect::<Vec<_>>(),
        [("a", 1), ("b", 1)]
    );
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.in_flight, c.unfinished), (1, 2, 3));
    assert!(!b.join_timeout(Duration::from_millis(10)).unwrap());
    assert_eq!(b.ack(&[got[0].id, got[1].id]).unwrap(), 2);
    let last = b.fetch(5, LEASE).unwrap();
    assert_eq!(last.len(), 1);

    // join waits for the last ack, made by another thread.
    let b2 = b.clone();
    let id = last[0].id;
    let acker = thread::spawn(move || b2.ack(&[id]).unwrap());
    b.join().unwrap();
    assert_eq!(acker.join().unwrap(), 1);
    assert_eq!(b.unfinished().unwrap(), 0);
}

#[test]
fn zombie_ack_is_noop() {
    let s = server();
    let m = s.connect().unwrap();
    let first: BrokerProxy<u32> = m.get("tasks").unwrap();
    let second = first.with_consumer("second");
    first.put(&7).unwrap();
    let d = first.fetch(1, SHORT).unwrap().remove(0);
    // The lease runs out: another consumer gets the entry, a second time.
    let again = second.fetch(1, LEASE).unwrap().remove(0);
    assert_eq!((again.id, again.item, again.attempt), (d.id, 7, 2));
    assert_eq!(
        first.ack(&[d.id]).unwrap(),
        0,
        "the zombie's ack does nothing"
    );
    assert_eq!(first.unfinished().unwrap(), 1);
    assert_eq!(second.ack(&[again.id]).unwrap(), 1);
    let c = first.counts().unwrap();
    assert_eq!((c.unfinished, c.expired, c.stale_acks), (0, 1, 1));
}

#[test]
fn duplicate_ack_count_never_negative() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    b.put_many(&[1, 2], 5).unwrap();
    let got = b.fetch(2, LEASE).unwrap();
    assert_eq!(b.ack(&[got[0].id]).unwrap(), 1);
    assert_eq!(b.ack(&[got[0].id, got[0].id]).unwrap(), 0);
    assert_eq!(b.unfinished().unwrap(), 1, "counted once");
    assert_eq!(b.ack(&[got[1].id, got[1].id]).unwrap(), 1);
    assert_eq!(b.unfinished().unwrap(), 0);
    assert_eq!(b.ack(&[12345]).unwrap(), 0, "an unknown id");
}

#[test]
fn past_max_deliveries_an_entry_is_dead_lettered_and_join_returns() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<String> = m.get("tasks").unwrap();
    b.put_many(&["poison".to_string()], 2).unwrap();
    for attempt in 1..=2 {
        let d = b.fetch(1, SHORT).unwrap().remove(0);
        assert_eq!(d.attempt, attempt);
    }
    // The second lease runs out too: no third delivery.
    assert!(
        b.join_timeout(LONG).unwrap(),
        "a dead letter is not unfinished"
    );
    let dead = b.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].item.as_deref(), Some("poison"));
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].reason.contains("lease ran out"),
        "{}",
        dead[0].reason
    );
    assert!(b.try_fetch(1, LEASE).unwrap().is_empty());
    assert_eq!(b.counts().unwrap().dead_total, 1);
}

#[test]
fn nack_redelivers_after_its_delay_and_dead_letter_gives_up() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    b.put(&1).unwrap();
    let d = b.fetch(1, LEASE).unwrap().remove(0);
    let at = Instant::now();
    assert!(b.nack(d.id, Duration::from_millis(300)).unwrap());
    assert!(!b.nack(d.id, Duration::ZERO).unwrap(), "no longer held");
    assert_eq!(b.counts().unwrap().delayed, 1);
    assert!(
        b.try_fetch(1, LEASE).unwrap().is_empty(),
        "not before its delay"
    );
    let again = b.fetch(1, LEASE).unwrap().remove(0);
    assert!(at.elapsed() >= Duration::from_millis(300));
    assert_eq!((again.id, again.attempt), (d.id, 2));
    assert!(b.dead_letter(again.id, "bad input").unwrap());
    assert!(!b.dead_letter(again.id, "twice").unwrap());
    assert_eq!(b.dead_letters(1).unwrap()[0].reason, "bad input");
    assert_eq!(b.unfinished().unwrap(), 0);
}

#[test]
fn extend_keeps_a_lease_that_would_run_out() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    let other = b.with_consumer("other");
    b.put(&1).unwrap();
    let d = b.fetch(1, Duration::from_millis(200)).unwrap().remove(0);
    assert_eq!(b.extend(&[d.id], LEASE).unwrap(), 1);
    assert_eq!(other.extend(&[d.id], LEASE).unwrap(), 0, "not its lease");
    // Well past the first lease: nobody else gets it.
    assert!(
        other
            .fetch_timeout(1, LEASE, Duration::from_millis(600))
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.ack(&[d.id]).unwrap(), 1);
}

#[test]
fn a_waiting_fetch_wakes_on_put_and_raw_fetch_sees_bytes() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    let b2 = b.clone();
    let fetcher = thread::spawn(move || b2.fetch(10, LEASE).unwrap());
    until("the fetch to wait on the server", || {
        s.stats().in_channel == 1
    });
    b.put(&5).unwrap();
    let got = fetcher.join().unwrap();
    assert_eq!(got[0].item, 5);
    b.put(&6).unwrap();
    let raw = b.fetch_raw(1, LEASE, LONG).unwrap();
    assert_eq!(raw[0].item, [6u8], "MessagePack of 6");
    assert!(b.dead_letter(raw[0].id, "not wanted").unwrap());
}

#[test]
fn bad_arguments_are_refused() {
    let m = Manager::start().unwrap();
    let b: BrokerProxy<u32> = m.broker().unwrap();
    assert!(b.fetch(0, LEASE).is_err());
    assert!(b.fetch(1_000_000, LEASE).is_err());
    assert!(b.put_many(&[1], 0).is_err());
    let e = m.get::<BrokerProxy<u32>>("nothing").unwrap_err();
    assert!(e.to_string().contains("nothing"), "{e}");
}

#[test]
fn one_result_per_entry_however_many_consumers_ran_it() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    let slow = b.with_consumer("slow");
    let fast = b.with_consumer("fast");
    b.put(&3).unwrap();
    // "slow" takes 3 and its lease runs out; "fast" runs it again.
    let d = slow.fetch(1, SHORT).unwrap().remove(0);
    let again = fast.fetch(1, LEASE).unwrap().remove(0);
    assert_eq!(again.id, d.id);
    assert!(
        fast.ack_with_result(again.id, "me", &(again.item * again.item), LEASE)
            .unwrap()
    );
    assert!(
        !slow
            .ack_with_result(d.id, "me", &(d.item * d.item), LEASE)
            .unwrap(),
        "the late consumer's result is dropped"
    );
    b.put(&4).unwrap();
    let d4 = fast.fetch(1, LEASE).unwrap().remove(0);
    assert!(fast.ack_with_result(d4.id, "me", &16u32, LEASE).unwrap());
    let got: Vec<u32> = b.results("me", 10, LONG).unwrap();
    assert_eq!(got, [9, 16], "one result each");
    assert!(
        b.results::<u32>("me", 10, Duration::from_millis(10))
            .unwrap()
            .is_empty()
    );
    assert!(
        b.results::<u32>("someone else", 10, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    assert!(b.join_timeout(LONG).unwrap());
    assert!(b.results::<u32>("me", 0, Duration::ZERO).is_err(), "max 0");
}

#[test]
fn an_unread_result_stream_expires() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    b.put(&1).unwrap();
    let d = b.fetch(1, LEASE).unwrap().remove(0);
    assert!(
        b.ack_with_result(d.id, "gone", &1u32, Duration::from_millis(100))
            .unwrap()
    );
    // Waiting for the stream of a client that never reads: it expires.
    let until = Instant::now() + LONG;
    loop {
        thread::sleep(Duration::from_millis(150));
        if b.results::<u32>("gone", 1, Duration::ZERO)
            .unwrap()
            .is_empty()
        {
            break;
        }
        assert!(Instant::now() < until, "the stream never expired");
    }
}

#[test]
fn a_dead_letter_can_tell_the_client_why() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    b.put(&1).unwrap();
    let d = b.fetch(1, LEASE).unwrap().remove(0);
    let why = "unknown task".to_string();
    assert!(
        b.dead_letter_with_result(d.id, &why, "client", &why, LEASE)
            .unwrap()
    );
    assert!(
        !b.dead_letter_with_result(d.id, &why, "client", &why, LEASE)
            .unwrap()
    );
    assert_eq!(
        b.results::<String>("client", 9, LONG).unwrap(),
        [why.as_str()]
    );
    assert_eq!(b.dead_letters(9).unwrap()[0].reason, why);
    assert_eq!(b.unfinished().unwrap(), 0);
}

#[test]
fn cancel_takes_out_only_a_queued_entry_and_notify_reaches_the_stream() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    let ids = b.put_many(&[1, 2, 3], 5).unwrap();
    let taken = b.fetch(1, LEASE).unwrap().remove(0);
    assert_eq!(taken.id, ids[0]);
    assert!(!b.cancel(ids[0]).unwrap(), "a consumer has it");
    assert!(b.cancel(ids[1]).unwrap());
    assert!(!b.cancel(ids[1]).unwrap(), "once");
    let d = b.fetch(1, LEASE).unwrap().remove(0);
    assert!(b.nack(d.id, Duration::from_secs(60)).unwrap());
    assert!(b.cancel(d.id).unwrap(), "a delayed entry is still queued");
    assert_eq!(b.unfinished().unwrap(), 1);
    b.notify("c", &"started".to_string(), LEASE).unwrap();
    assert_eq!(b.results::<String>("c", 5, LONG).unwrap(), ["started"]);
    assert_eq!(b.ack(&[taken.id]).unwrap(), 1);
    assert!(b.join_timeout(LONG).unwrap());
}

#[test]
fn an_entry_whose_consumers_all_died_tells_its_client() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<u32> = m.get("tasks").unwrap();
    b.put_many_or_tell(&[9], 1, "waiter", &"lost".to_string(), LEASE)
        .unwrap();
    let d = b.fetch(1, SHORT).unwrap().remove(0);
    assert_eq!(d.item, 9);
    // Its one lease runs out: dead-lettered, and the client is told.
    assert_eq!(b.results::<String>("waiter", 5, LONG).unwrap(), ["lost"]);
    assert_eq!(b.counts().unwrap().dead_total, 1);
    assert!(b.join_timeout(LONG).unwrap());
}

#[test]
fn worker_heartbeats_expire() {
    let s = server();
    let m = s.connect().unwrap();
    let b: BrokerProxy<String> = m.get("tasks").unwrap();
    b.heartbeat("w2", b"two", LEASE).unwrap();
    b.heartbeat("w1", b"one", SHORT).unwrap();
    let ws = b.workers().unwrap();
    assert_eq!(
        ws.iter()
            .map(|w| (w.id.as_str(), w.record.as_slice()))
            .collect::<Vec<_>>(),
        [("w1", &b"one"[..]), ("w2", &b"two"[..])]
    );
    assert!(ws.iter().all(|w| w.age < LONG));
    // w1 expires once SHORT passes without another heartbeat.
    until("w1 to expire", || b.workers().unwrap().len() == 1);
    assert_eq!(b.workers().unwrap()[0].id, "w2");
    // A newer heartbeat replaces the record; expire 0 removes it.
    b.heartbeat("w2", b"two again", LEASE).unwrap();
    assert_eq!(b.workers().unwrap()[0].record, b"two again");
    b.heartbeat("w2", b"", Duration::ZERO).unwrap();
    assert!(b.workers().unwrap().is_empty());
}
