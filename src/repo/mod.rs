//! The on-disk snapshot repository: layout and names, the manifest format, atomic
//! publication and the writer lock. No DuckDB types here.

pub mod layout;
pub mod lock;
pub mod manifest;
pub mod pin;
pub mod publish;
