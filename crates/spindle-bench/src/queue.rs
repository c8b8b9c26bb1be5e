//! `spindle bench queue`: spindle's `Queue` beside crossbeam-channel, flume,
//! std's mpsc and Python's `queue.Queue` with threads.
//!
//! Cases: `st_put_get` (one thread, put then get), `spsc_unbounded`,
//! `spsc_bounded1000`, `mpmc_4x4_bounded1000` (4 producers, 4 consumers),
//! `pingpong` (a round trip between two threads over two queues). std's mpsc
//! has a single consumer, so it sits out the mpmc case. `spindle_mutex` is
//! spindle's `LifoQueue`, whose core is the one mutex the FIFO `Queue` had
//! before its lock-free core (issue 16 §5): the same cases in the same
//! rounds show what the lock-free FIFO gains or loses on the host at hand
//! (the order items come out in does not change these counts).

use std::hint::black_box;
use std::thread;

use spindle::queue::{LifoQueue, Queue};

use super::{Bench, Impl, Unit, imp, micros_per, per_sec};

/// A channel under test: a sending and a receiving handle, both cloneable.
trait Chan: Send + 'static {
    type Tx: Clone + Send + 'static;
    type Rx: Send + 'static;
    fn send(tx: &Self::Tx, x: u64);
    fn recv(rx: &Self::Rx) -> u64;
}

struct Spindle;
struct SpindleMutex;
struct Crossbeam;
struct Flume;
struct Std;

impl Chan for Spindle {
    type Tx = Queue<u64>;
    type Rx = Queue<u64>;
    #[inline]
    fn send(tx: &Queue<u64>, x: u64) {
        tx.put(x).unwrap();
    }
    #[inline]
    fn recv(rx: &Queue<u64>) -> u64 {
        rx.get().unwrap()
    }
}

impl Chan for SpindleMutex {
    type Tx = LifoQueue<u64>;
    type Rx = LifoQueue<u64>;
    #[inline]
    fn send(tx: &LifoQueue<u64>, x: u64) {
        tx.put(x).unwrap();
    }
    #[inline]
    fn recv(rx: &LifoQueue<u64>) -> u64 {
        rx.get().unwrap()
    }
}

impl Chan for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    #[inline]
    fn send(tx: &Self::Tx, x: u64) {
        tx.send(x).unwrap();
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

impl Chan for Flume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    #[inline]
    fn send(tx: &Self::Tx, x: u64) {
        tx.send(x).unwrap();
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// std's mpsc: `Sender` for unbounded, `SyncSender` for bounded.
#[derive(Clone)]
enum StdTx {
    Unbounded(std::sync::mpsc::Sender<u64>),
    Bounded(std::sync::mpsc::SyncSender<u64>),
}

impl Chan for Std {
    type Tx = StdTx;
    type Rx = std::sync::mpsc::Receiver<u64>;
    #[inline]
    fn send(tx: &StdTx, x: u64) {
        match tx {
            StdTx::Unbounded(s) => s.send(x).unwrap(),
            StdTx::Bounded(s) => s.send(x).unwrap(),
        }
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// A fresh channel; `cap` 0 = unbounded.
fn make<C: Maker>(cap: usize) -> (C::Tx, C::Rx) {
    C::make(cap)
}

trait Maker: Chan {
    fn make(cap: usize) -> (Self::Tx, Self::Rx);
}

impl Maker for Spindle {
    fn make(cap: usize) -> (Queue<u64>, Queue<u64>) {
        let q = Queue::with_maxsize(cap);
        (q.clone(), q)
    }
}

impl Maker for SpindleMutex {
    fn make(cap: usize) -> (LifoQueue<u64>, LifoQueue<u64>) {
        let q = LifoQueue::with_maxsize(cap);
        (q.clone(), q)
    }
}

impl Maker for Crossbeam {
    fn make(cap: usize) -> (Self::Tx, Self::Rx) {
        if cap == 0 {
            crossbeam_channel::unbounded()
        } else {
            crossbeam_channel::bounded(cap)
        }
    }
}

impl Maker for Flume {
    fn make(cap: usize) -> (Self::Tx, Self::Rx) {
        if cap == 0 {
            flume::unbounded()
        } else {
            flume::bounded(cap)
        }
    }
}

impl Maker for Std {
    fn make(cap: usize) -> (Self::Tx, Self::Rx) {
        if cap == 0 {
            let (tx, rx) = std::sync::mpsc::channel();
            (StdTx::Unbounded(tx), rx)
        } else {
            let (tx, rx) = std::sync::mpsc::sync_channel(cap);
            (StdTx::Bounded(tx), rx)
        }
    }
}

fn st_put_get<C: Maker>(n: u64) -> f64 {
    let (tx, rx) = make::<C>(0);
    per_sec(n, |n| {
        let mut sum = 0;
        for i in 0..n {
            C::send(&tx, i);
            sum += C::recv(&rx);
        }
        black_box(sum);
    })
}

fn spsc<C: Maker>(n: u64, cap: usize) -> f64 {
    let (tx, rx) = make::<C>(cap);
    per_sec(n, |n| {
        let producer = thread::spawn(move || (0..n).for_each(|i| C::send(&tx, i)));
        let sum: u64 = (0..n).map(|_| C::recv(&rx)).sum();
        producer.join().unwrap();
        black_box(sum);
    })
}

fn mpmc<C: Maker>(n: u64, cap: usize) -> f64
where
    C::Rx: Clone,
{
    let (tx, rx) = make::<C>(cap);
    let per = n / 4;
    per_sec(per * 4, |_| {
        let threads: Vec<_> = (0..4)
            .flat_map(|_| {
                let (tx, rx) = (tx.clone(), rx.clone());
                [
                    thread::spawn(move || {
                        (0..per).for_each(|i| C::send(&tx, i));
                        0
                    }),
                    thread::spawn(move || (0..per).map(|_| C::recv(&rx)).sum::<u64>()),
                ]
            })
            .collect();
        let sum: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        black_box(sum);
    })
}

fn pingpong<C: Maker>(n: u64) -> f64 {
    let (ping_tx, ping_rx) = make::<C>(0);
    let (pong_tx, pong_rx) = make::<C>(0);
    micros_per(n, |n| {
        let echo = thread::spawn(move || {
            for _ in 0..n {
                C::send(&pong_tx, C::recv(&ping_rx));
            }
        });
        for i in 0..n {
            C::send(&ping_tx, i);
            black_box(C::recv(&pong_rx));
        }
        echo.join().unwrap();
    })
}

/// One contender per Rust implementation, plus Python.
fn contenders<'a>(
    b: &Bench,
    case: &str,
    with_std: bool,
    f: impl Fn(&str) -> Box<dyn FnMut() -> f64 + 'a>,
) -> Vec<Impl<'a>> {
    let mut names = vec!["spindle", "spindle_mutex", "crossbeam", "flume"];
    if with_std {
        names.push("std");
    }
    let mut v: Vec<Impl<'a>> = names.into_iter().map(|name| imp(name, f(name))).collect();
    v.push(b.python("queue_suite.py", case));
    v
}

macro_rules! by_name {
    ($name:expr, $f:ident $(, $arg:expr)*) => {
        match $name {
            "spindle" => Box::new(move || $f::<Spindle>($($arg),*)) as Box<dyn FnMut() -> f64>,
            "spindle_mutex" => Box::new(move || $f::<SpindleMutex>($($arg),*)),
            "crossbeam" => Box::new(move || $f::<Crossbeam>($($arg),*)),
            "flume" => Box::new(move || $f::<Flume>($($arg),*)),
            _ => Box::new(move || $f::<Std>($($arg),*)),
        }
    };
}

pub(crate) fn run(b: &mut Bench) {
    let scale = if b.quick() { 1 } else { 4 };
    let n = 250_000 * scale;
    let trips = 10_000 * scale;
    let impls = contenders(b, "st_put_get", true, |name| by_name!(name, st_put_get, n));
    b.case("st_put_get", Unit::OpsPerSec, impls);
    let impls = contenders(b, "spsc_unbounded", true, |name| by_name!(name, spsc, n, 0));
    b.case("spsc_unbounded", Unit::ItemsPerSec, impls);
    let impls = contenders(b, "spsc_bounded1000", true, |name| {
        by_name!(name, spsc, n, 1000)
    });
    b.case("spsc_bounded1000", Unit::ItemsPerSec, impls);
    // std's mpsc has one consumer: not applicable.
    let impls = contenders(b, "mpmc_4x4_bounded1000", false, |name| match name {
        "spindle" => Box::new(move || mpmc::<Spindle>(n, 1000)),
        "spindle_mutex" => Box::new(move || mpmc::<SpindleMutex>(n, 1000)),
        "crossbeam" => Box::new(move || mpmc::<Crossbeam>(n, 1000)),
        _ => Box::new(move || mpmc::<Flume>(n, 1000)),
    });
    b.case("mpmc_4x4_bounded1000", Unit::ItemsPerSec, impls);
    let impls = contenders(b, "pingpong", true, |name| by_name!(name, pingpong, trips));
    b.case("pingpong", Unit::Micros, impls);
}
