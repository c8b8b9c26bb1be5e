//! gevent's `Pool.map`: fetch a list of pages with at most three requests
//! in flight, and get the results back in the order of the list.
//!
//! Python:
//!
//! ```python
//! from gevent import monkey; monkey.patch_all()
//! from gevent.pool import Pool
//! from urllib.request import urlopen
//!
//! def fetch(url):
//!     return url, len(urlopen(url).read())
//!
//! pool = Pool(3)
//! for url, size in pool.map(fetch, urls):
//!     print(url, size)
//! ```
//!
//! spindle: `spindle_aio::Pool::new(3)` and `pool.map(fetch, urls).await`
//! inside `spindle_aio::run`; the fetch is `fetch_url_async` of
//! `examples/common/http.rs`, written on `tokio::net` (what
//! `monkey.patch_all()` becomes; see docs/PYTHON.md). The pages come from a
//! local server and answer after different delays, so they finish out of
//! order, yet `map` hands the results back in input order. A counter of the
//! fetches running shows that no more than three are ever in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use spindle_aio::Pool;
use spindle_examples::http::{LocalServer, Page, fetch_url_async};

/// The pages: path, size in bytes, and how long the server takes (ms).
const PAGES: [(&str, usize, u64); 7] = [
    ("/python", 3000, 150),
    ("/gevent", 1200, 50),
    ("/greenlet", 800, 100),
    ("/asyncio", 2500, 30),
    ("/tokio", 4000, 120),
    ("/rust", 1500, 60),
    ("/spindle", 2000, 90),
];

const POOL_SIZE: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pages = PAGES
        .iter()
        .map(|&(path, size, ms)| Page::new(path, size, ms))
        .collect();
    let server = LocalServer::start(pages)?;
    let urls: Vec<String> = PAGES.iter().map(|(path, ..)| server.url(path)).collect();

    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(POOL_SIZE)?;
    let start = Instant::now();
    // `fetch(url)`: runs inside one of the pool's slots.
    let fetch = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        move |url: String| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                println!("start {url} ({now} in flight)");
                let body = fetch_url_async(&url).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                println!("done  {url} after {:?}", start.elapsed());
                body.map(|b| (url, b.len()))
            }
        }
    };
    let results = spindle_aio::run(pool.map(fetch, urls.clone()))?;

    println!("results, in input order:");
    for ((url, outcome), (_, size, _)) in urls.iter().zip(results).zip(PAGES) {
        let (got_url, got_size) = outcome??; // the task's error, then the fetch's
        println!("{got_url} {got_size}");
        assert_eq!(&got_url, url, "map keeps input order");
        assert_eq!(got_size, size);
    }
    let peak = peak.load(Ordering::SeqCst);
    println!(
        "{} pages in {:?}, at most {peak} in flight (pool size {POOL_SIZE})",
        PAGES.len(),
        start.elapsed()
    );
    assert!(peak <= POOL_SIZE, "{peak} fetches ran at once");
    Ok(())
}
