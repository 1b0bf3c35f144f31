//! One thin module per subcommand: each turns its flags into a plan and
//! options, hands them to the executor (or the doctor), and reports.

pub mod bench;
pub mod build;
pub mod dist;
pub mod doctor;
pub mod test;
