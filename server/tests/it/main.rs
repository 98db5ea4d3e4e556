//! Process-level tests: they run the real `quiver` binary on temporary data directories.
//! One test binary, so it links once.

mod cli;
mod crash;
