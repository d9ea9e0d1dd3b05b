//! The snapshot repository: layout and names, the manifest format, and every storage
//! operation on a local folder or an S3-compatible bucket (publication, locking, the cache
//! of remote files, the async runtime object-store I/O runs on). No DuckDB types here.

pub mod cache;
pub mod config;
pub mod copy;
pub mod gc;
pub mod layout;
pub mod list;
pub mod lock;
pub mod manifest;
pub mod publish;
pub mod remote;
pub mod retire;
pub mod runtime;
pub mod schedule;
pub mod store;
