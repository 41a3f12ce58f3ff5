//! Looking a key up by something that is not the key type itself.
//!
//! A `ShardedCache<String, V>` is looked up with a `&str`, and the byte cache looks its keys up
//! by a borrowed form that has no `Borrow` relation to the stored key. [`Equivalent`] covers
//! both: any `Q` that hashes like `K` and can compare itself with a `K`.

use std::borrow::Borrow;

/// A type that can stand for `K` in a lookup.
///
/// It must hash exactly as the `K` it is equivalent to. Every `Q` that `K` borrows as is
/// equivalent to `K`, so `&str` works for `String` keys:
///
/// ```
/// use epochcache::Equivalent;
/// assert!("abc".equivalent(&String::from("abc")));
/// ```
pub trait Equivalent<K: ?Sized> {
    /// Whether `self` stands for `key`.
    fn equivalent(&self, key: &K) -> bool;
}

impl<Q: ?Sized + Eq, K: ?Sized + Borrow<Q>> Equivalent<K> for Q {
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self == key.borrow()
    }
}
