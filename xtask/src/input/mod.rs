//! Data in: recipe sets and platform files, deserialized and validated, with
//! errors that name the file, the line and the key. Nothing here reads the
//! host or the network; loading reads only the files it is pointed at.

pub mod dist_tag;
pub mod located;
pub mod names;
pub mod platform;
pub mod recipe;
pub mod target;
