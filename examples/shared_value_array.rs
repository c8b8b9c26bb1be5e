//! The shared-memory example of Python's `multiprocessing` documentation
//! (`Value` and `Array`): a child sets `n.value = 3.1415927` and negates every
//! element of `a`; the parent sees both changes, under every start method.
//!
//! ```python
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)):
//!         a[i] = -a[i]
//!
//! num = Value('d', 0.0)
//! arr = Array('i', range(10))
//! p = Process(target=f, args=(num, arr)); p.start(); p.join()
//! print(num.value); print(arr[:])
//! ```

// 3.1415927 is the Python program's literal, not a stand-in for PI.
#![allow(clippy::approx_constant)]

use spindle::ipc::{Array, Value};

use spindle::process::{Process, StartMethod};

#[spindle::task]
fn f(n: Value<f64>, a: Array<i32>) {
    n.store(3.1415927);
    for i in 0..a.len() {
        // `a[i] = -a[i]`: each access takes the array's lock once.
        let x = a.get(i).expect("in range");
        a.set(i, -x).expect("in range");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for method in StartMethod::all() {
        let num = Value::new(0.0f64)?;
        let arr = Array::from_vec((0..10).collect::<Vec<i32>>())?;
        let mut p = Process::builder()
            .task(f::call(num.clone(), arr.clone()))
            .start_method(method)
            .start()?;
        p.join()?;
        println!("[{}] {}", method.name(), num.load());
        println!("[{}] {:?}", method.name(), arr.to_vec());
        assert_eq!(arr.to_vec(), (0..10).map(|x| -x).collect::<Vec<i32>>());
    }
    // With Fork a closure can capture the handles instead.
    let num = Value::new(0.0f64)?;
    let arr = Array::from_vec((0..10).collect::<Vec<i32>>())?;
    let (n2, a2) = (num.clone(), arr.clone());
    let mut p = Process::builder()
        .closure(move || {
            *n2.lock() = 3.1415927;
            for x in a2.lock().iter_mut() {
                *x = -*x; // the whole array under one lock
            }
        })
        .start()?;
    p.join()?;
    println!("[fork closure] {} {:?}", num.load(), arr.to_vec());
    Ok(())
}
