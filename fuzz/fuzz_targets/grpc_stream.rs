#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    p2p_grpc_fuzz::grpc_stream::run(data);
});
