//! Generates code from the protos in `tests/protos` and checks what comes out.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

fn protos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

fn generate_with(builder: p2p_grpc_build::Builder, files: &[&str]) -> BTreeMap<String, String> {
    let dir = protos_dir();
    let builder = builder.emit_rerun_if_changed(false);
    let fds = builder
        .load_fds(files, &[&dir])
        .expect("the test protos compile");
    builder.generate(fds).expect("code generation succeeds")
}

fn generate(files: &[&str]) -> BTreeMap<String, String> {
    generate_with(p2p_grpc_build::configure(), files)
}

fn helloworld() -> String {
    let out = generate(&["greeter.proto"]);
    out["helloworld.rs"].clone()
}

/// Squeezes runs of whitespace so that assertions do not depend on line breaks chosen by
/// prettyplease.
fn squeeze(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut space = false;
    for c in code.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                let prev = out.chars().last().unwrap_or(' ');
                // No space after an opening or before a closing bracket or a comma.
                if !matches!(prev, '(' | '<' | '[') && !matches!(c, ')' | '>' | ']' | ',' | '.') {
                    out.push(' ');
                }
            }
            space = false;
            out.push(c);
        }
    }
    out.replace(",)", ")")
        .replace(",>", ">")
        .replace(", }", " }")
}

#[track_caller]
fn assert_has(code: &str, needle: &str) {
    let squeezed = squeeze(code);
    let needle = squeeze(needle);
    assert!(
        squeezed.contains(&needle),
        "generated code lacks `{needle}`:\n{code}"
    );
}

#[test]
fn one_file_per_package_and_no_well_known_types() {
    let out = generate(&["greeter.proto"]);
    let names: Vec<_> = out.keys().map(String::as_str).collect();
    assert_eq!(names, ["helloworld.rs", "p2p.nested.rs"]);
}

#[test]
fn messages_come_before_services() {
    let code = helloworld();
    let message = code.find("pub struct HelloRequest").unwrap();
    let client = code.find("pub mod greeter_client").unwrap();
    assert!(message < client);
}

#[test]
fn client_has_the_four_call_kinds() {
    let code = helloworld();
    assert_has(&code, "pub mod greeter_client {");
    assert_has(&code, "use p2p_grpc::codegen::*;");
    assert_has(
        &code,
        "#[derive(Debug, Clone)] pub struct GreeterClient { inner: p2p_grpc::client::Grpc, }",
    );
    assert_has(
        &code,
        "pub fn new(channel: p2p_grpc::Channel) -> Self { Self { inner: p2p_grpc::client::Grpc::new(channel) } }",
    );
    for builder in [
        "pub fn send_compressed(mut self, encoding: p2p_grpc::CompressionEncoding) -> Self",
        "pub fn accept_compressed(mut self, encoding: p2p_grpc::CompressionEncoding) -> Self",
        "pub fn max_decoding_message_size(mut self, limit: usize) -> Self",
        "pub fn max_encoding_message_size(mut self, limit: usize) -> Self",
    ] {
        assert_has(&code, builder);
    }
    assert_has(
        &code,
        "pub async fn say_hello(&self, request: impl p2p_grpc::IntoRequest<super::HelloRequest>)
            -> ::core::result::Result<p2p_grpc::Response<super::HelloReply>, p2p_grpc::Status> {
            self.inner.unary(request.into_request(), \"/helloworld.Greeter/SayHello\").await }",
    );
    assert_has(
        &code,
        "pub async fn record(&self, request: impl p2p_grpc::IntoStreamingRequest<Message = super::Point>)
            -> ::core::result::Result<p2p_grpc::Response<super::Summary>, p2p_grpc::Status> {
            self.inner.client_streaming(request.into_streaming_request(), \"/helloworld.Greeter/Record\").await }",
    );
    assert_has(
        &code,
        "pub async fn list_features(&self, request: impl p2p_grpc::IntoRequest<super::Rect>)
            -> ::core::result::Result<p2p_grpc::Response<p2p_grpc::Streaming<super::Feature>>, p2p_grpc::Status> {
            self.inner.server_streaming(request.into_request(), \"/helloworld.Greeter/ListFeatures\").await }",
    );
    assert_has(
        &code,
        "pub async fn chat(&self, request: impl p2p_grpc::IntoStreamingRequest<Message = super::Note>)
            -> ::core::result::Result<p2p_grpc::Streaming<super::Note>, p2p_grpc::Status> {
            self.inner.streaming(request.into_streaming_request(), \"/helloworld.Greeter/Chat\").await }",
    );
}

#[test]
fn server_has_trait_const_struct_and_router() {
    let code = helloworld();
    assert_has(&code, "pub mod greeter_server {");
    assert_has(
        &code,
        "#[p2p_grpc::codegen::async_trait] pub trait Greeter: ::core::marker::Send + ::core::marker::Sync + 'static {",
    );
    assert_has(
        &code,
        "async fn say_hello(&self, request: p2p_grpc::Request<super::HelloRequest>)
            -> ::core::result::Result<p2p_grpc::Response<super::HelloReply>, p2p_grpc::Status>;",
    );
    assert_has(
        &code,
        "async fn record(&self, request: p2p_grpc::Request<p2p_grpc::Streaming<super::Point>>)
            -> ::core::result::Result<p2p_grpc::Response<super::Summary>, p2p_grpc::Status>;",
    );
    assert_has(
        &code,
        "async fn list_features(&self, request: p2p_grpc::Request<super::Rect>)
            -> ::core::result::Result<p2p_grpc::Response<p2p_grpc::BoxStream<super::Feature>>, p2p_grpc::Status>;",
    );
    assert_has(
        &code,
        "async fn chat(&self, request: p2p_grpc::Request<p2p_grpc::Streaming<super::Note>>)
            -> ::core::result::Result<p2p_grpc::Response<p2p_grpc::BoxStream<super::Note>>, p2p_grpc::Status>;",
    );
    assert_has(
        &code,
        "pub const SERVICE_NAME: &str = \"helloworld.Greeter\";",
    );
    assert_has(
        &code,
        "pub struct GreeterServer<T> { inner: p2p_grpc::codegen::Arc<T>, }",
    );
    assert_has(&code, "impl<T: Greeter> GreeterServer<T> {");
    assert_has(&code, "pub fn new(inner: T) -> Self");
    assert_has(
        &code,
        "pub fn from_arc(inner: p2p_grpc::codegen::Arc<T>) -> Self",
    );
    assert_has(&code, "impl<T> ::core::clone::Clone for GreeterServer<T>");
    assert_has(&code, "impl<T> ::core::fmt::Debug for GreeterServer<T>");
    assert_has(
        &code,
        "impl<T: Greeter> p2p_grpc::server::Service for GreeterServer<T> {
            fn name(&self) -> &'static str { SERVICE_NAME }
            fn call(&self, method: &str, call: p2p_grpc::server::ServerCall)
                -> p2p_grpc::codegen::BoxFuture<'static, ()> {
                let inner = p2p_grpc::codegen::Arc::clone(&self.inner);
                match method {",
    );
    assert_has(
        &code,
        "\"SayHello\" => { call.unary(move |request| async move { <T as Greeter>::say_hello(&inner, request).await }) }",
    );
    assert_has(
        &code,
        "\"Record\" => { call.client_streaming(move |request| async move { <T as Greeter>::record(&inner, request).await }) }",
    );
    assert_has(
        &code,
        "\"ListFeatures\" => { call.server_streaming(move |request| async move { <T as Greeter>::list_features(&inner, request).await }) }",
    );
    assert_has(
        &code,
        "\"Chat\" => { call.streaming(move |request| async move { <T as Greeter>::chat(&inner, request).await }) }",
    );
    assert_has(&code, "_ => call.unimplemented()");
}

#[test]
fn proto_comments_become_docs() {
    let code = helloworld();
    // A message comment (prost-build's own work).
    assert_has(&code, "/// The request of SayHello. #[derive(");
    // The service comment, on the client struct and on the server trait.
    assert_has(
        &code,
        "/// The greeting service. /// It greets. #[derive(Debug, Clone)] pub struct GreeterClient",
    );
    assert_has(
        &code,
        "/// The greeting service. /// It greets. #[p2p_grpc::codegen::async_trait] pub trait Greeter",
    );
    // Leading and trailing method comments, on the client and on the trait.
    assert_has(&code, "/// Sends a greeting. pub async fn say_hello(");
    assert_has(&code, "/// Sends a greeting. async fn say_hello(");
    assert_has(&code, "/// Lists features. pub async fn list_features(");
    assert_has(&code, "/// Lists features. async fn list_features(");
    // Detached comments are not documentation.
    assert!(!code.contains("Detached comment"));
    // A service without comments still gets documented items.
    assert_has(&code, "/// A client for the `helloworld.Empty` service.");
}

#[test]
fn well_known_types_map_to_prost_types() {
    let code = helloworld();
    assert_has(&code, "::core::option::Option<::prost_types::Timestamp>");
    // google.protobuf.Empty is `()` and must not get a `super::` prefix.
    assert_has(
        &code,
        "pub async fn ping(&self, request: impl p2p_grpc::IntoRequest<()>)
            -> ::core::result::Result<p2p_grpc::Response<()>, p2p_grpc::Status>",
    );
    assert_has(
        &code,
        "async fn ping(&self, request: p2p_grpc::Request<()>)
            -> ::core::result::Result<p2p_grpc::Response<()>, p2p_grpc::Status>;",
    );
    // `option deprecated = true;` marks the client method.
    assert_has(&code, "#[deprecated] pub async fn ping(");
}

#[test]
fn types_from_other_packages_resolve_from_the_service_modules() {
    let code = helloworld();
    assert_has(
        &code,
        "pub async fn deep(&self, request: impl p2p_grpc::IntoRequest<super::super::p2p::nested::Inner>)
            -> ::core::result::Result<p2p_grpc::Response<super::super::p2p::nested::inner::Deeper>, p2p_grpc::Status>",
    );
    let out = generate(&["greeter.proto"]);
    let nested = &out["p2p.nested.rs"];
    assert_has(nested, "pub mod nested_client {");
    assert_has(nested, "pub mod nested_server {");
    assert_has(
        nested,
        "pub const SERVICE_NAME: &str = \"p2p.nested.Nested\";",
    );
    assert_has(nested, "\"/p2p.nested.Nested/Get\"");
    assert_has(nested, "p2p_grpc::Response<super::inner::Deeper>");
    assert_has(nested, "/// Lives in a nested package.");
}

#[test]
fn rust_keywords_are_escaped() {
    let code = helloworld();
    assert_has(&code, "pub mod match_client {");
    assert_has(&code, "pub struct MatchClient {");
    assert_has(&code, "pub mod match_server {");
    assert_has(&code, "pub trait Match: ::core::marker::Send");
    assert_has(
        &code,
        "impl<T: Match> p2p_grpc::server::Service for MatchServer<T>",
    );
    assert_has(&code, "pub async fn r#type(");
    assert_has(
        &code,
        "async fn r#type(&self, request: p2p_grpc::Request<super::HelloRequest>)",
    );
    assert_has(&code, "\"/helloworld.Match/Type\"");
    assert_has(
        &code,
        "\"Type\" => { call.unary(move |request| async move { <T as Match>::r#type(&inner, request).await }) }",
    );
    // `self` cannot be a raw identifier: prost-build's `self_`.
    assert_has(&code, "pub async fn self_(");
    assert_has(&code, "\"/helloworld.Match/Self\"");
    assert_has(&code, "pub async fn r#async(");
    // `clone` would shadow `Clone::clone` on the client, and must not be called through
    // `Arc<T>` in the router.
    assert_has(&code, "pub async fn clone_rpc(");
    assert_has(
        &code,
        "async fn clone(&self, request: p2p_grpc::Request<super::HelloRequest>)",
    );
    assert_has(&code, "<T as Match>::clone(&inner, request)");
    // An rpc named like a client builder method gets a suffix on the client only.
    assert_has(
        &code,
        "/// Named like a client builder method. pub async fn new_rpc(",
    );
    assert_has(&code, "\"/helloworld.Greeter/New\"");
    assert_has(
        &code,
        "/// Named like a client builder method. async fn new(",
    );
}

#[test]
fn several_services_in_one_file() {
    let code = helloworld();
    for module in [
        "greeter_client",
        "greeter_server",
        "match_client",
        "match_server",
        "empty_client",
        "empty_server",
    ] {
        assert_eq!(
            code.matches(&format!("pub mod {module} {{")).count(),
            1,
            "{module}"
        );
    }
    // A service without methods answers every call with UNIMPLEMENTED.
    assert_has(
        &code,
        "pub trait Empty: ::core::marker::Send + ::core::marker::Sync + 'static {}",
    );
}

#[test]
fn client_only_and_server_only() {
    let client = generate_with(
        p2p_grpc_build::configure().build_server(false),
        &["greeter.proto"],
    );
    assert!(client["helloworld.rs"].contains("pub mod greeter_client"));
    assert!(!client["helloworld.rs"].contains("pub mod greeter_server"));
    let server = generate_with(
        p2p_grpc_build::configure().build_client(false),
        &["greeter.proto"],
    );
    assert!(!server["helloworld.rs"].contains("pub mod greeter_client"));
    assert!(server["helloworld.rs"].contains("pub mod greeter_server"));
}

#[test]
fn options_reach_prost_build_and_generated_paths() {
    let out = generate_with(
        p2p_grpc_build::configure()
            .type_attribute(".helloworld.HelloRequest", "#[derive(PartialOrd)]")
            .crate_path("::my_sdk::grpc"),
        &["greeter.proto"],
    );
    let code = &out["helloworld.rs"];
    assert_has(code, "#[derive(PartialOrd)]");
    assert_has(
        code,
        "pub struct GreeterClient { inner: ::my_sdk::grpc::client::Grpc, }",
    );
    assert!(!code.contains(" p2p_grpc::"));
}

#[test]
fn compile_writes_files_to_out_dir() {
    let out = tempfile::tempdir().unwrap();
    let dir = protos_dir();
    p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .include_file("mod.rs")
        .compile(&[dir.join("greeter.proto")], &[&dir])
        .unwrap();
    let code = std::fs::read_to_string(out.path().join("helloworld.rs")).unwrap();
    assert!(code.contains("pub mod greeter_client"));
    assert!(out.path().join("p2p.nested.rs").is_file());
    let include = std::fs::read_to_string(out.path().join("mod.rs")).unwrap();
    assert!(include.contains("pub mod helloworld"), "{include}");
    assert!(include.contains("pub mod nested"), "{include}");
}

#[test]
fn compile_protos_uses_the_file_directory_as_include() {
    let out = tempfile::tempdir().unwrap();
    // compile_protos() writes to OUT_DIR; use the builder with the same include rule.
    let proto = protos_dir().join("nested/types.proto");
    p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile(&[&proto], &[proto.parent().unwrap()])
        .unwrap();
    assert!(out.path().join("p2p.nested.rs").is_file());
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = protos_dir();
    let err = p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .load_fds(&["broken.proto"], &[&dir])
        .unwrap_err();
    let text = err.to_string();
    let path = dir.join("broken.proto");
    assert!(
        text.starts_with(&format!("{}:7:1: ", path.display())),
        "{text}"
    );
    assert!(text.contains("expected"), "{text}");
    // The offending line is quoted.
    assert!(text.contains("7 | }"), "{text}");
    assert_eq!(err.line(), Some(7));
    assert_eq!(err.file(), Some(path.as_path()));
    // `main() -> Result<_, Box<dyn Error>>` prints Debug: same text.
    assert_eq!(format!("{err:?}"), text);
}

#[test]
fn unknown_type_names_file_and_line() {
    let dir = protos_dir();
    let err = p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .load_fds(&["bad_type.proto"], &[&dir])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:6:3: ", dir.join("bad_type.proto").display())),
        "{text}"
    );
    assert!(text.contains("Missing"), "{text}");
}

#[test]
fn missing_file_and_missing_import_are_clear() {
    let dir = protos_dir();
    let err = p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .load_fds(&["nope.proto"], &[&dir])
        .unwrap_err();
    assert!(
        err.to_string().contains("nope.proto: file not found"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("a.proto"),
        "syntax = \"proto3\";\npackage a;\nimport \"missing/b.proto\";\n",
    )
    .unwrap();
    let err = p2p_grpc_build::configure()
        .emit_rerun_if_changed(false)
        .load_fds(&["a.proto"], &[tmp.path()])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a.proto:3:1: "), "{text}");
    assert!(text.contains("missing/b.proto"), "{text}");
}

#[test]
fn compile_fds_without_out_dir_outside_build_script_fails_clearly() {
    if std::env::var_os("OUT_DIR").is_some() {
        return;
    }
    let dir = protos_dir();
    let builder = p2p_grpc_build::configure().emit_rerun_if_changed(false);
    let fds = builder.load_fds(&["greeter.proto"], &[&dir]).unwrap();
    let err = builder.compile_fds(fds).unwrap_err();
    assert!(err.to_string().contains("OUT_DIR"), "{err}");
}
