//! Loom models of epochcache's engine; the models are in `tests/models.rs` and run only under
//! `--cfg epochcache_loom` (see this package's README). This library is empty.
