//! Python's `multiprocessing.Pipe` between a child and the parent;
//! `send`/`recv` of values and `send_bytes(buf, offset, size)` / `recv_bytes` /
//! `recv_bytes_into`.

use spindle::ipc::{Connection, ConnectionError, Pipe};
use spindle::process::{Process, current_process};

#[spindle::task]
fn process_fun(conn: Connection, name: String) {
    println!("{} sends: {name}", current_process().pid());
    conn.send(&name).unwrap();
    let buf = b"0123456789";
    conn.send_bytes(buf).unwrap();
    conn.send_bytes_at(buf, 3, Some(4)).unwrap(); // "3456"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (conn1, conn2) = Pipe(true)?;
    let mut process = Process::new(process_fun::call(conn1, "http://forwardpeng/club/".into()));
    process.start()?;
    process.join()?;

    println!("{} receives:", current_process().pid());
    println!("{}", conn2.recv::<String>()?);
    println!("recv_bytes: {:?}", String::from_utf8(conn2.recv_bytes()?)?);
    let mut buf = [0u8; 2];
    match conn2.recv_bytes_into(&mut buf) {
        Err(ConnectionError::BufferTooShort(whole)) => {
            println!(
                "buffer of 2 too short; message handed back: {:?}",
                String::from_utf8(whole)?
            )
        }
        other => println!("unexpected: {other:?}"),
    }
    // One-way pipe: the first end only receives, the second only sends.
    let (r, w) = Pipe(false)?;
    w.send_bytes(b"one way")?;
    println!("one-way: {:?}", String::from_utf8(r.recv_bytes()?)?);
    println!(
        "sending on the read end: {}",
        r.send_bytes(b"x").unwrap_err()
    );
    Ok(())
}
