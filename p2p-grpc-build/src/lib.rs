//! Generates [p2p-grpc] clients and servers from `.proto` files, in a `build.rs`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     p2p_grpc_build::compile_protos("proto/helloworld.proto")?;
//!     Ok(())
//! }
//! ```
//!
//! and, in the crate:
//!
//! ```ignore
//! pub mod helloworld {
//!     p2p_grpc::include_proto!("helloworld");
//! }
//! ```
//!
//! The crate needs `p2p-grpc` and `prost` as dependencies (and `prost-types` when the protos
//! use well-known types such as `google.protobuf.Timestamp`), and `p2p-grpc-build` as a
//! build-dependency.
//!
//! # How it works
//!
//! - [protox] parses and checks the `.proto` files in pure Rust: no `protoc` binary is needed,
//!   ever. The well-known types (`google/protobuf/empty.proto`, `timestamp.proto`,
//!   `wrappers.proto`, ...) are built in and can be imported without an include directory.
//! - [prost-build] writes the messages, one file per protobuf package (`helloworld.rs`,
//!   `grpc.testing.rs`, `_.rs` for files without a package) in `OUT_DIR`. Well-known types
//!   map to `prost-types` (`google.protobuf.Empty` becomes `()`, `BoolValue` becomes `bool`).
//! - This crate's [`ServiceGenerator`] appends, for each service `Foo`, a module `foo_client`
//!   with a cloneable `FooClient` and a module `foo_server` with an `#[async_trait]` trait `Foo`
//!   and a `FooServer<T: Foo>` to register with a p2p-grpc server. Proto comments become doc
//!   comments.
//!
//! A mistake in a `.proto` file fails the build with the file, line and column:
//!
//! ```text
//! error: failed to run custom build command for `my-crate`
//! ...
//! Error: proto/helloworld.proto:7:3: expected ';', but found 'rpc'
//!     7 |   rpc SayHello (HelloRequest) returns (HelloReply) {}
//!       |   ^^^
//! ```
//!
//! # Options
//!
//! [`configure`] returns a [`Builder`] with the knobs of `tonic-build`:
//!
//! ```no_run
//! # fn main() -> Result<(), p2p_grpc_build::Error> {
//! p2p_grpc_build::configure()
//!     .build_server(false)
//!     .type_attribute(".", "#[derive(Hash)]")
//!     .compile(&["proto/a.proto", "proto/b.proto"], &["proto"])?;
//! # Ok(())
//! # }
//! ```
//!
//! [p2p-grpc]: https://example.invalid/p2p-grpc
//! [protox]: https://docs.rs/protox
//! [prost-build]: https://docs.rs/prost-build

#![warn(missing_docs)]

mod error;
mod generator;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

pub use error::Error;
pub use generator::ServiceGenerator;
/// The `FileDescriptorSet` type accepted by [`Builder::compile_fds`], re-exported from
/// `prost-types`.
pub use prost_types::FileDescriptorSet;

/// Compiles one `.proto` file (and what it imports) into `OUT_DIR`, with clients and servers.
///
/// The file's directory is the include directory: imports are looked up relative to it.
/// Use [`configure`] for several files, other include directories or other options.
///
/// # Errors
///
/// When a file cannot be read or parsed, an import is missing, or `OUT_DIR` is not set (this
/// is meant to run in a `build.rs`). The error names the file and line.
pub fn compile_protos(proto: impl AsRef<Path>) -> Result<(), Error> {
    let proto = proto.as_ref();
    let include = match proto.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    configure().compile(&[proto], &[include])
}

/// Starts a [`Builder`] with default options: clients and servers, output to `OUT_DIR`,
/// `cargo:rerun-if-changed` printed for every input file.
pub fn configure() -> Builder {
    Builder::default()
}

/// Options for code generation; made by [`configure`].
#[derive(Debug, Clone)]
pub struct Builder {
    build_client: bool,
    build_server: bool,
    emit_rerun_if_changed: bool,
    crate_path: String,
    out_dir: Option<PathBuf>,
    include_file: Option<PathBuf>,
    file_descriptor_set_path: Option<PathBuf>,
    compile_well_known_types: bool,
    type_attributes: Vec<(String, String)>,
    message_attributes: Vec<(String, String)>,
    enum_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    extern_paths: Vec<(String, String)>,
    boxed: Vec<String>,
    bytes: Vec<String>,
    btree_map: Vec<String>,
    disable_comments: Vec<String>,
    skip_debug: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            build_client: true,
            build_server: true,
            emit_rerun_if_changed: true,
            crate_path: "p2p_grpc".to_owned(),
            out_dir: None,
            include_file: None,
            file_descriptor_set_path: None,
            compile_well_known_types: false,
            type_attributes: Vec::new(),
            message_attributes: Vec::new(),
            enum_attributes: Vec::new(),
            field_attributes: Vec::new(),
            extern_paths: Vec::new(),
            boxed: Vec::new(),
            bytes: Vec::new(),
            btree_map: Vec::new(),
            disable_comments: Vec::new(),
            skip_debug: Vec::new(),
        }
    }
}

impl Builder {
    /// Whether to generate the `xxx_client` modules (default `true`).
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Whether to generate the `xxx_server` modules (default `true`).
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// Whether to print `cargo:rerun-if-changed=PATH` for every `.proto` file read from disk,
    /// imports included (default `true`), so that cargo reruns the build script when one
    /// changes.
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Where to write the generated files (default: the `OUT_DIR` cargo gives build scripts).
    pub fn out_dir(mut self, out_dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(out_dir.as_ref().to_path_buf());
        self
    }

    /// The path under which generated code finds the p2p-grpc crate (default `p2p_grpc`).
    /// Set it when the dependency is renamed or re-exported, e.g. `::my_sdk::p2p_grpc`.
    pub fn crate_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }

    /// Also write a file that `include!`s every generated package in nested modules
    /// (prost-build's `include_file`), relative to the output directory.
    pub fn include_file(mut self, path: impl AsRef<Path>) -> Self {
        self.include_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Also write the encoded `FileDescriptorSet` (with source info) to `path`, e.g. for
    /// server reflection.
    pub fn file_descriptor_set_path(mut self, path: impl AsRef<Path>) -> Self {
        self.file_descriptor_set_path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Generate the `google.protobuf` types instead of using `prost-types` (default `false`).
    pub fn compile_well_known_types(mut self, enable: bool) -> Self {
        self.compile_well_known_types = enable;
        self
    }

    /// Adds an attribute to the messages and enums matching `path` (see
    /// [`prost_build::Config::type_attribute`]; `"."` matches everything).
    pub fn type_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.type_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Adds an attribute to the messages matching `path`
    /// ([`prost_build::Config::message_attribute`]).
    pub fn message_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.message_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Adds an attribute to the enums matching `path`
    /// ([`prost_build::Config::enum_attribute`]).
    pub fn enum_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.enum_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Adds an attribute to the fields matching `path`
    /// ([`prost_build::Config::field_attribute`]).
    pub fn field_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.field_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Uses an existing Rust type for a protobuf type or package
    /// ([`prost_build::Config::extern_path`]), e.g. `(".common", "::common_protos")`.
    pub fn extern_path(mut self, proto_path: impl AsRef<str>, rust_path: impl AsRef<str>) -> Self {
        self.extern_paths.push((
            proto_path.as_ref().to_owned(),
            rust_path.as_ref().to_owned(),
        ));
        self
    }

    /// Boxes the message fields matching `path` ([`prost_build::Config::boxed`]).
    pub fn boxed(mut self, path: impl AsRef<str>) -> Self {
        self.boxed.push(path.as_ref().to_owned());
        self
    }

    /// Uses `bytes::Bytes` for the `bytes` fields matching `path`
    /// ([`prost_build::Config::bytes`]).
    pub fn bytes(mut self, path: impl AsRef<str>) -> Self {
        self.bytes.push(path.as_ref().to_owned());
        self
    }

    /// Uses `BTreeMap` for the map fields matching `path`
    /// ([`prost_build::Config::btree_map`]).
    pub fn btree_map(mut self, path: impl AsRef<str>) -> Self {
        self.btree_map.push(path.as_ref().to_owned());
        self
    }

    /// Leaves out the proto comments of the items matching `path`
    /// ([`prost_build::Config::disable_comments`]).
    pub fn disable_comments(mut self, path: impl AsRef<str>) -> Self {
        self.disable_comments.push(path.as_ref().to_owned());
        self
    }

    /// Skips `#[derive(Debug)]` on the types matching `path`
    /// ([`prost_build::Config::skip_debug`]).
    pub fn skip_debug(mut self, path: impl AsRef<str>) -> Self {
        self.skip_debug.push(path.as_ref().to_owned());
        self
    }

    /// Compiles `protos` (looked up in `includes`, which also serve imports) and writes the
    /// Rust files.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or parsed, an import is missing, the output directory
    /// is not set or cannot be written. The error names the file and line.
    pub fn compile(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let fds = self.load_fds(protos, includes)?;
        self.compile_fds(fds)
    }

    /// Parses `protos` with protox into a `FileDescriptorSet` (imports and source info
    /// included), printing `cargo:rerun-if-changed` lines unless disabled.
    ///
    /// Useful to feed the same descriptors to another generator as well, then call
    /// [`compile_fds`](Self::compile_fds).
    ///
    /// # Errors
    ///
    /// As [`compile`](Self::compile), for reading and parsing.
    pub fn load_fds(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<FileDescriptorSet, Error> {
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let mut compiler =
            protox::Compiler::new(&includes).map_err(|err| Error::from_protox(err, &includes))?;
        compiler.include_imports(true).include_source_info(true);
        let mut rerun = RerunIfChanged::new(self.emit_rerun_if_changed);
        for proto in protos {
            let proto = proto.as_ref();
            // Printed first so that cargo reruns the script once a broken file is fixed.
            rerun.emit(proto);
            if !proto.is_file() && !includes.iter().any(|dir| dir.join(proto).is_file()) {
                let dirs: Vec<_> = includes.iter().map(|d| d.display().to_string()).collect();
                return Err(Error::msg(format!(
                    "{}: file not found (include directories: {})",
                    proto.display(),
                    dirs.join(", ")
                )));
            }
            compiler
                .open_file(proto)
                .map_err(|err| Error::from_protox(err, &includes))?;
        }
        // The imports read from disk (the built-in google/protobuf files have no path).
        for file in compiler.files() {
            if let Some(path) = file.path() {
                rerun.emit(path);
            }
        }
        Ok(compiler.file_descriptor_set())
    }

    /// Generates Rust files from descriptors compiled elsewhere (they should carry source info
    /// for doc comments, and the imported files).
    ///
    /// # Errors
    ///
    /// When the output directory is not set or cannot be written.
    pub fn compile_fds(self, fds: FileDescriptorSet) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::msg(
                        "OUT_DIR is not set: run p2p-grpc-build from a build.rs, or give out_dir()",
                    )
                })?,
        };
        if let Some(path) = &self.file_descriptor_set_path {
            let bytes = prost::Message::encode_to_vec(&fds);
            std::fs::write(path, bytes)
                .map_err(|err| Error::io(format!("cannot write {}", path.display()), err))?;
        }
        let mut config = self.config();
        config.out_dir(&out_dir);
        config.compile_fds(fds).map_err(|err| {
            Error::io(
                format!("cannot generate code in {}", out_dir.display()),
                err,
            )
        })
    }

    /// Generates the code without writing it: returns each package's file name (as written
    /// by [`compile_fds`](Self::compile_fds), e.g. `grpc.testing.rs`) and its contents.
    ///
    /// # Errors
    ///
    /// When prost-build rejects the descriptors (e.g. an invalid extern path).
    pub fn generate(self, fds: FileDescriptorSet) -> Result<BTreeMap<String, String>, Error> {
        let requests: Vec<_> = fds
            .file
            .into_iter()
            .map(|file| {
                (
                    prost_build::Module::from_protobuf_package_name(file.package()),
                    file,
                )
            })
            .collect();
        let names: BTreeMap<_, _> = requests
            .iter()
            .map(|(module, _)| (module.clone(), module.to_file_name_or("_")))
            .collect();
        let modules = self
            .config()
            .generate(requests)
            .map_err(|err| Error::io("cannot generate code", err))?;
        Ok(modules
            .into_iter()
            .map(|(module, code)| (names[&module].clone(), code))
            .collect())
    }

    /// The prost-build configuration with this builder's options and service generator.
    fn config(&self) -> prost_build::Config {
        let mut config = prost_build::Config::new();
        config.service_generator(Box::new(
            ServiceGenerator::new()
                .build_client(self.build_client)
                .build_server(self.build_server)
                .crate_path(self.crate_path.clone()),
        ));
        if self.compile_well_known_types {
            config.compile_well_known_types();
        }
        if let Some(path) = &self.include_file {
            config.include_file(path);
        }
        for (path, attr) in &self.type_attributes {
            config.type_attribute(path, attr);
        }
        for (path, attr) in &self.message_attributes {
            config.message_attribute(path, attr);
        }
        for (path, attr) in &self.enum_attributes {
            config.enum_attribute(path, attr);
        }
        for (path, attr) in &self.field_attributes {
            config.field_attribute(path, attr);
        }
        for (proto, rust) in &self.extern_paths {
            config.extern_path(proto, rust);
        }
        for path in &self.boxed {
            config.boxed(path);
        }
        if !self.bytes.is_empty() {
            config.bytes(&self.bytes);
        }
        if !self.btree_map.is_empty() {
            config.btree_map(&self.btree_map);
        }
        if !self.disable_comments.is_empty() {
            config.disable_comments(&self.disable_comments);
        }
        if !self.skip_debug.is_empty() {
            config.skip_debug(&self.skip_debug);
        }
        config
    }
}

/// Prints `cargo:rerun-if-changed` once per path.
struct RerunIfChanged {
    enabled: bool,
    seen: std::collections::BTreeSet<PathBuf>,
}

impl RerunIfChanged {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            seen: Default::default(),
        }
    }

    fn emit(&mut self, path: &Path) {
        if self.enabled && self.seen.insert(path.to_path_buf()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
