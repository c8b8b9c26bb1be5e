//! Python's `multiprocessing.Manager()`: a dict and a list that live in a
//! manager's server process, handed to a child process that changes them;
//! the parent sees the changes.
//!
//! The Python program:
//!
//! ```python
//! def func(mydict, mylist):
//!     mydict[1] = '1'
//!     mydict['2'] = 2
//!     mydict[0.25] = None
//!     mylist.reverse()
//!
//! if __name__ == '__main__':
//!     with multiprocessing.Manager() as MG:
//!         mydict = MG.dict()
//!         mylist = MG.list(range(5))
//!         p = multiprocessing.Process(target=func, args=(mydict, mylist))
//!         p.start()
//!         p.join()
//!         print(mylist)   # [4, 3, 2, 1, 0]
//!         print(mydict)   # {1: '1', '2': 2, 0.25: None}
//! ```
//!
//! In spindle the proxies are ordinary task arguments: a proxy serializes
//! as a token with a lease, and the child that receives it reaches the same
//! object on the server. A Python dict takes keys and values of any type; a
//! `DictProxy<K, V>` has one key type and one value type, so the kinds this
//! program uses are listed in two small enums (an `f64` key is fine as long
//! as it is never NaN: the server compares keys by their encoding).

use std::fmt;

use serde::{Deserialize, Serialize};
use spindle::manager::{DictProxy, ListProxy, Manager};
use spindle::process::Process;

/// The dict's keys: the Python program mixes an int, a str and a float.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Str(String),
    Float(f64),
}

/// The dict's values: a str, an int, or None.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    None,
}

// Printed as Python's repr prints them.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "'{s}'"),
            Key::Float(x) => write!(f, "{x}"),
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Str(s) => write!(f, "'{s}'"),
            Val::Int(n) => write!(f, "{n}"),
            Val::None => f.write_str("None"),
        }
    }
}

/// The child: runs in another process, on proxies it received as arguments.
#[spindle::task]
fn func(mydict: DictProxy<Key, Val>, mylist: ListProxy<i64>) {
    println!(
        "child {}: changing the dict and the list",
        std::process::id()
    );
    mydict
        .set(&Key::Int(1), &Val::Str("1".into()))
        .expect("d[1] = '1'");
    mydict
        .set(&Key::Str("2".into()), &Val::Int(2))
        .expect("d['2'] = 2");
    mydict
        .set(&Key::Float(0.25), &Val::None)
        .expect("d[0.25] = None");
    mylist.reverse().expect("l.reverse()");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `with Manager() as MG:` — the server runs in a child process until
    // `mg` is dropped (or `shutdown_server` is called).
    let mg = Manager::start()?;
    println!(
        "parent {}: manager server is process {}",
        std::process::id(),
        mg.process().and_then(|p| p.pid()).unwrap_or_default()
    );
    let mydict: DictProxy<Key, Val> = mg.dict()?;
    let mylist: ListProxy<i64> = mg.list_from(&(0..5).collect::<Vec<_>>())?;

    let mut p = Process::new(func::call(mydict.clone(), mylist.clone()));
    p.start()?;
    p.join()?;
    assert_eq!(p.exitcode(), Some(0), "the child failed");

    let list = mylist.to_vec()?;
    let items = mydict.items()?;
    let shown: Vec<String> = list.iter().map(|n| n.to_string()).collect();
    println!("[{}]", shown.join(", "));
    let shown: Vec<String> = items.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("{{{}}}", shown.join(", "));

    // What the Python program prints, checked.
    assert_eq!(list, [4, 3, 2, 1, 0]);
    assert_eq!(
        items,
        [
            (Key::Int(1), Val::Str("1".into())),
            (Key::Str("2".into()), Val::Int(2)),
            (Key::Float(0.25), Val::None),
        ]
    );
    mg.shutdown_server()?;
    println!("ok: the child's changes are seen by the parent");
    Ok(())
}
