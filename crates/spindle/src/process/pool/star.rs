//! [`StarFn`]: the functions `starmap` accepts — a generated
//! `my_task::call` of any arity, applied to a tuple of arguments.
#![forbid(unsafe_code)]

use super::call::Call;
use crate::process;

/// A function making a [`Call`] from the items of an argument tuple `Args`,
/// as Python's `starmap` unpacks each item (`func(*args)`). Implemented for
/// every `Fn(A, B, ..) -> Call<T>` of up to six arguments — in practice, the
/// `my_task::call` that `#[spindle::task]` generates.
pub trait StarFn<Args> {
    /// The task called.
    type Task: process::Task;
    /// The call for one tuple of arguments.
    fn star_call(&self, args: Args) -> Call<Self::Task>;
}

macro_rules! star_fn {
    ($($a:ident),+) => {
        impl<F, T, $($a),+> StarFn<($($a,)+)> for F
        where
            F: Fn($($a),+) -> Call<T>,
            T: process::Task,
        {
            type Task = T;
            #[allow(non_snake_case)]
            fn star_call(&self, ($($a,)+): ($($a,)+)) -> Call<T> {
                self($($a),+)
            }
        }
    };
}

star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
