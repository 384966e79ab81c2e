//! `sqlx::migrate!` embeds `../migrations` when the crate is compiled: without this, a new
//! migration file would not make Cargo compile it again, and the binary would miss it.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
