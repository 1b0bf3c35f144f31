//! Sources: downloads into the content-addressed cache, the pins that prove
//! them (sha256, git tree), and unpacking that treats every entry as hostile.

pub mod archive;
pub mod fetch;
pub mod gittree;
