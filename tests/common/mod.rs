//! The shared test fixtures live in the `p2p-grpc-test-support` crate
//! (`tests/support/`); every test file takes them from here.
#![allow(unused_imports)]

pub use p2p_grpc_test_support::*;
