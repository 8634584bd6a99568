//! Rebuilds the crate when a migration is added: `refinery::embed_migrations!` reads the
//! folder at compile time, and cargo alone only tracks the files it embedded last time.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
