//! A Python futures tutorial's `download_all(sites)` with a 5-thread pool,
//! first with `executor.map(download_one, sites)`, then with `submit` +
//! `as_completed`, where results arrive in completion order, not input order.
//!
//! The sites are pages of a local HTTP server this program starts on
//! 127.0.0.1 (no internet); each page answers after its own delay.

use std::time::Instant;

use spindle::futures::{Executor, ThreadPoolExecutor, as_completed, fallible};
use spindle_examples::http::{LocalServer, Page, fetch_url};

fn download_one(url: &str) -> std::io::Result<usize> {
    let body = fetch_url(url)?;
    println!("Read {} from {url}", body.len());
    Ok(body.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths = [
        ("/wiki/Portal:Arts", 300),
        ("/wiki/Portal:History", 50),
        ("/wiki/Portal:Society", 250),
        ("/wiki/Portal:Biography", 100),
        ("/wiki/Portal:Mathematics", 200),
        ("/wiki/Portal:Technology", 150),
        ("/wiki/Portal:Geography", 0),
        ("/wiki/Portal:Science", 120),
    ];
    let pages = paths
        .iter()
        .enumerate()
        .map(|(i, &(p, ms))| Page::new(p, 10_000 + 1_000 * i, ms))
        .collect();
    let server = LocalServer::start(pages)?;
    let sites: Vec<String> = paths.iter().map(|(p, _)| server.url(p)).collect();

    println!("== executor.map(download_one, sites): input order");
    let start = Instant::now();
    {
        let executor = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let sizes = executor.map(fallible(|url: String| download_one(&url)), sites.clone())?;
        let total: usize = sizes.map(|r| r.unwrap_or(0)).sum();
        println!("{total} bytes");
    }
    println!(
        "Download {} sites in {:.3} seconds",
        sites.len(),
        start.elapsed().as_secs_f64()
    );

    println!("== submit + as_completed: completion order");
    let start = Instant::now();
    {
        let executor = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let mut to_do = Vec::new();
        for site in &sites {
            let site = site.clone();
            let future = executor.submit(fallible(move || download_one(&site)))?;
            to_do.push(future);
        }
        for future in as_completed(&to_do) {
            let i = to_do.iter().position(|f| f == &future).unwrap_or(0);
            println!("  done: {} ({:?})", paths[i].0, future.result());
        }
    }
    println!(
        "Download {} sites in {:.3} seconds",
        sites.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
