//! The [`prost_build::ServiceGenerator`] that writes p2p-grpc clients and servers.
//!
//! Code is produced as text; prost-build then parses every package file with `syn` and
//! pretty-prints it with `prettyplease`, so the indentation written here does not matter,
//! only that the text is valid Rust.

use std::fmt::Write as _;

use heck::ToSnakeCase;
use prost_build::{Comments, Method, Service};

/// Names of the inherent methods every generated client already has. An rpc whose
/// snake-cased name is one of these gets a `_rpc` suffix on the client (only there: the
/// server trait has no such methods). `clone` is here because an inherent `clone` would
/// shadow `Clone::clone` in `client.clone()`.
const CLIENT_RESERVED: &[&str] = &[
    "new",
    "clone",
    "send_compressed",
    "accept_compressed",
    "max_decoding_message_size",
    "max_encoding_message_size",
];

/// Lints allowed in the generated modules: rpc names are chosen by the proto author, so
/// e.g. an rpc `New` or `IntoX` must not fail a consumer's `clippy -D warnings`.
const LINTS_ALLOWED: &str = "unused_variables, dead_code, missing_docs, \
    clippy::wildcard_imports, clippy::let_unit_value, clippy::new_ret_no_self, \
    clippy::wrong_self_convention, clippy::should_implement_trait";

/// Rust types that prost-build maps some well-known wrapper types to; they are not paths
/// relative to the package module and must not get a `super::` prefix.
const PRIMITIVES: &[&str] = &["()", "bool", "f32", "f64", "i32", "i64", "u32", "u64"];

/// Generates p2p-grpc client and server code for every service prost-build meets.
///
/// Most users never see this type: [`Builder`](crate::Builder) installs it. It is public for
/// those who drive [`prost_build::Config`] themselves:
///
/// ```no_run
/// let mut config = prost_build::Config::new();
/// config.service_generator(Box::new(p2p_grpc_build::ServiceGenerator::new()));
/// ```
#[derive(Debug, Clone)]
pub struct ServiceGenerator {
    build_client: bool,
    build_server: bool,
    crate_path: String,
}

impl Default for ServiceGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceGenerator {
    /// A generator writing both clients and servers that refer to the runtime as `p2p_grpc`.
    pub fn new() -> Self {
        Self {
            build_client: true,
            build_server: true,
            crate_path: "p2p_grpc".to_owned(),
        }
    }

    /// Whether to generate `xxx_client` modules (default `true`).
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Whether to generate `xxx_server` modules (default `true`).
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// The path under which generated code finds the p2p-grpc crate (default `p2p_grpc`),
    /// for a dependency that was renamed or is re-exported, e.g. `::my_crate::p2p_grpc`.
    pub fn crate_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }
}

impl prost_build::ServiceGenerator for ServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let ctx = ServiceContext::new(&service, &self.crate_path);
        if self.build_client {
            ctx.write_client(&service, buf);
        }
        if self.build_server {
            ctx.write_server(&service, buf);
        }
    }
}

/// Names derived once per service.
struct ServiceContext<'a> {
    /// Path to the runtime crate, e.g. `p2p_grpc`.
    krate: &'a str,
    /// `package.Service`, or `Service` without a package.
    full_name: String,
    /// snake_case base of the module names, from the proto name so it is never a keyword.
    module_base: String,
}

impl<'a> ServiceContext<'a> {
    fn new(service: &Service, krate: &'a str) -> Self {
        let full_name = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        Self {
            krate,
            full_name,
            module_base: service.proto_name.to_snake_case(),
        }
    }

    fn route(&self, method: &Method) -> String {
        format!("/{}/{}", self.full_name, method.proto_name)
    }

    fn write_client(&self, service: &Service, buf: &mut String) {
        let k = self.krate;
        let client = client_struct_name(&service.name);
        let _ = writeln!(buf, "/// Generated client implementations.");
        let _ = writeln!(buf, "pub mod {}_client {{", self.module_base);
        let _ = writeln!(buf, "#![allow(unused_imports, {LINTS_ALLOWED})]");
        let _ = writeln!(buf, "use {k}::codegen::*;");
        write_docs(&service.comments, buf);
        if service.comments.leading.is_empty() && service.comments.trailing.is_empty() {
            let _ = writeln!(buf, "/// A client for the `{}` service.", self.full_name);
        }
        if service.options.deprecated() {
            let _ = writeln!(buf, "#[deprecated]");
        }
        let _ = writeln!(buf, "#[derive(Debug, Clone)]");
        let _ = writeln!(buf, "pub struct {client} {{ inner: {k}::client::Grpc }}");
        let _ = writeln!(buf, "impl {client} {{");
        let _ = writeln!(
            buf,
            "/// Creates a client for the `{full}` service over a channel.
            pub fn new(channel: {k}::Channel) -> Self {{
                Self {{ inner: {k}::client::Grpc::new(channel) }}
            }}
            /// Compress requests with `encoding`.
            pub fn send_compressed(mut self, encoding: {k}::CompressionEncoding) -> Self {{
                self.inner = self.inner.send_compressed(encoding);
                self
            }}
            /// Accept responses compressed with `encoding`.
            pub fn accept_compressed(mut self, encoding: {k}::CompressionEncoding) -> Self {{
                self.inner = self.inner.accept_compressed(encoding);
                self
            }}
            /// Limits the size of a decoded response message.
            pub fn max_decoding_message_size(mut self, limit: usize) -> Self {{
                self.inner = self.inner.max_decoding_message_size(limit);
                self
            }}
            /// Limits the size of an encoded request message.
            pub fn max_encoding_message_size(mut self, limit: usize) -> Self {{
                self.inner = self.inner.max_encoding_message_size(limit);
                self
            }}",
            full = self.full_name,
        );
        for method in &service.methods {
            self.write_client_method(method, buf);
        }
        let _ = writeln!(buf, "}}");
        let _ = writeln!(buf, "}}");
    }

    fn write_client_method(&self, method: &Method, buf: &mut String) {
        let k = self.krate;
        let input = message_type(&method.input_type);
        let output = message_type(&method.output_type);
        let route = self.route(method);
        let fn_name = if CLIENT_RESERVED.contains(&method.name.as_str()) {
            format!("{}_rpc", method.name)
        } else {
            method.name.clone()
        };
        write_docs(&method.comments, buf);
        if method.options.deprecated() {
            let _ = writeln!(buf, "#[deprecated]");
        }
        let (request, into, call, response) =
            match (method.client_streaming, method.server_streaming) {
                (false, false) => (
                    format!("impl {k}::IntoRequest<{input}>"),
                    "into_request",
                    "unary",
                    format!("{k}::Response<{output}>"),
                ),
                (true, false) => (
                    format!("impl {k}::IntoStreamingRequest<Message = {input}>"),
                    "into_streaming_request",
                    "client_streaming",
                    format!("{k}::Response<{output}>"),
                ),
                (false, true) => (
                    format!("impl {k}::IntoRequest<{input}>"),
                    "into_request",
                    "server_streaming",
                    format!("{k}::Response<{k}::Streaming<{output}>>"),
                ),
                // Returned as soon as the request headers are sent: the
                // response headers come with the first message.
                (true, true) => (
                    format!("impl {k}::IntoStreamingRequest<Message = {input}>"),
                    "into_streaming_request",
                    "streaming",
                    format!("{k}::Streaming<{output}>"),
                ),
            };
        let _ = writeln!(
            buf,
            "pub async fn {fn_name}(&self, request: {request}) \
                -> ::core::result::Result<{response}, {k}::Status> {{
                self.inner.{call}(request.{into}(), {route:?}).await
            }}"
        );
    }

    fn write_server(&self, service: &Service, buf: &mut String) {
        let k = self.krate;
        let name = &service.name;
        let server = server_struct_name(&service.name);
        let _ = writeln!(buf, "/// Generated server implementations.");
        let _ = writeln!(buf, "pub mod {}_server {{", self.module_base);
        let _ = writeln!(buf, "#![allow({LINTS_ALLOWED})]");
        write_docs(&service.comments, buf);
        if service.comments.leading.is_empty() && service.comments.trailing.is_empty() {
            let _ = writeln!(
                buf,
                "/// The handlers of the `{}` service; implement it and serve it with \
                 [`{server}`].",
                self.full_name
            );
        }
        let _ = writeln!(buf, "#[{k}::codegen::async_trait]");
        let _ = writeln!(
            buf,
            "pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{"
        );
        for method in &service.methods {
            let input = message_type(&method.input_type);
            let output = message_type(&method.output_type);
            let request = if method.client_streaming {
                format!("{k}::Streaming<{input}>")
            } else {
                input
            };
            let response = if method.server_streaming {
                format!("{k}::BoxStream<{output}>")
            } else {
                output
            };
            write_docs(&method.comments, buf);
            let _ = writeln!(
                buf,
                "async fn {}(&self, request: {k}::Request<{request}>) \
                    -> ::core::result::Result<{k}::Response<{response}>, {k}::Status>;",
                method.name
            );
        }
        let _ = writeln!(buf, "}}");
        let _ = writeln!(
            buf,
            "/// The fully qualified name of the service.
            pub const SERVICE_NAME: &str = {full:?};
            /// Serves a [`{name}`] implementation; register it with a p2p-grpc server.
            pub struct {server}<T> {{ inner: {k}::codegen::Arc<T> }}
            impl<T: {name}> {server}<T> {{
                /// Wraps a service implementation.
                pub fn new(inner: T) -> Self {{
                    Self::from_arc({k}::codegen::Arc::new(inner))
                }}
                /// Wraps a service implementation that is already shared.
                pub fn from_arc(inner: {k}::codegen::Arc<T>) -> Self {{
                    Self {{ inner }}
                }}
            }}
            impl<T> ::core::clone::Clone for {server}<T> {{
                fn clone(&self) -> Self {{
                    Self {{ inner: {k}::codegen::Arc::clone(&self.inner) }}
                }}
            }}
            impl<T> ::core::fmt::Debug for {server}<T> {{
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
                    f.write_str({debug:?})
                }}
            }}
            impl<T: {name}> {k}::server::Service for {server}<T> {{
                fn name(&self) -> &'static str {{
                    SERVICE_NAME
                }}
                fn call(&self, method: &str, call: {k}::server::ServerCall) \
                    -> {k}::codegen::BoxFuture<'static, ()> {{",
            full = self.full_name,
            debug = format!("{server}({})", self.full_name),
        );
        if service.methods.is_empty() {
            let _ = writeln!(buf, "call.unimplemented()");
        } else {
            let _ = writeln!(buf, "let inner = {k}::codegen::Arc::clone(&self.inner);");
            let _ = writeln!(buf, "match method {{");
            for method in &service.methods {
                let kind = match (method.client_streaming, method.server_streaming) {
                    (false, false) => "unary",
                    (true, false) => "client_streaming",
                    (false, true) => "server_streaming",
                    (true, true) => "streaming",
                };
                // Fully qualified: `inner.clone(request)` would find `Arc::clone` first.
                let _ = writeln!(
                    buf,
                    "{:?} => call.{kind}(move |request| async move {{ \
                        <T as {name}>::{}(&inner, request).await }}),",
                    method.proto_name, method.name
                );
            }
            let _ = writeln!(buf, "_ => call.unimplemented(),");
            let _ = writeln!(buf, "}}");
        }
        let _ = writeln!(buf, "}}");
        let _ = writeln!(buf, "}}");
        let _ = writeln!(buf, "}}");
    }
}

/// `Greeter` -> `GreeterClient`; `Self_` (prost's escape of `Self`) -> `SelfClient`.
fn client_struct_name(service: &str) -> String {
    format!("{}Client", unescape(service))
}

/// `Greeter` -> `GreeterServer`.
fn server_struct_name(service: &str) -> String {
    format!("{}Server", unescape(service))
}

/// Drops the `r#` prefix or `_` suffix prost-build adds to keywords, for names that get a
/// suffix of their own anyway.
fn unescape(ident: &str) -> &str {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    match ident {
        "Self_" => "Self",
        other => other,
    }
}

/// Turns a type path that prost-build resolved relative to the package module into one
/// that resolves from the generated `xxx_client` / `xxx_server` modules, one level deeper.
///
/// Absolute paths (`::prost_types::Timestamp`, `::prost::alloc::...`), `crate::` paths and
/// the primitive types used for wrapper messages (`()` for `google.protobuf.Empty`, `bool`
/// for `BoolValue`, ...) are kept as they are.
pub(crate) fn message_type(resolved: &str) -> String {
    if resolved.starts_with("::")
        || resolved.starts_with("crate::")
        || PRIMITIVES.contains(&resolved)
    {
        resolved.to_owned()
    } else {
        format!("super::{resolved}")
    }
}

/// Writes the leading and trailing comments of a proto item as `///` lines (detached
/// comments are not documentation and are left out).
fn write_docs(comments: &Comments, buf: &mut String) {
    let docs = Comments {
        leading_detached: Vec::new(),
        leading: comments.leading.clone(),
        trailing: comments.trailing.clone(),
    };
    docs.append_with_indent(0, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_prefixes_relative_paths_only() {
        assert_eq!(message_type("HelloRequest"), "super::HelloRequest");
        assert_eq!(
            message_type("super::other::Thing"),
            "super::super::other::Thing"
        );
        assert_eq!(message_type("nested::Inner"), "super::nested::Inner");
        assert_eq!(
            message_type("::prost_types::Timestamp"),
            "::prost_types::Timestamp"
        );
        assert_eq!(message_type("()"), "()");
        assert_eq!(message_type("bool"), "bool");
        assert_eq!(message_type("crate::Foo"), "crate::Foo");
        assert_eq!(
            message_type("::prost::alloc::string::String"),
            "::prost::alloc::string::String"
        );
    }

    #[test]
    fn struct_names_drop_keyword_escapes() {
        assert_eq!(client_struct_name("Greeter"), "GreeterClient");
        assert_eq!(client_struct_name("Self_"), "SelfClient");
        assert_eq!(server_struct_name("Match"), "MatchServer");
    }
}
