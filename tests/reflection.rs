//! Server reflection through its own v1 and v1alpha clients: every kind of
//! question, dependencies included, errors, and the built-in descriptors
//! of health and reflection. (grpcio's reflection client runs against the
//! interop server in `interop/tests/foreign_peers.rs`.)

mod common;

use common::*;
use futures::StreamExt;
use p2p_grpc::health::HealthReporter;
use p2p_grpc::reflection::v1::server_reflection_request::MessageRequest;
use p2p_grpc::reflection::v1::server_reflection_response::MessageResponse;
use p2p_grpc::reflection::{v1, v1alpha, Reflection};
use p2p_grpc::{Channel, Server};
use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
};

/// `demo.proto` (a message with a nested one, an enum, a service) and
/// `ext.proto`, which imports it and extends `demo.Hello` with field 100.
fn descriptors() -> Vec<u8> {
    let demo = FileDescriptorProto {
        name: Some("demo.proto".into()),
        package: Some("demo".into()),
        message_type: vec![DescriptorProto {
            name: Some("Hello".into()),
            nested_type: vec![DescriptorProto {
                name: Some("Inner".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        enum_type: vec![EnumDescriptorProto {
            name: Some("Kind".into()),
            ..Default::default()
        }],
        service: vec![ServiceDescriptorProto {
            name: Some("Greeter".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Say".into()),
                input_type: Some(".demo.Hello".into()),
                output_type: Some(".demo.Hello".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ext = FileDescriptorProto {
        name: Some("ext.proto".into()),
        package: Some("ext".into()),
        dependency: vec!["demo.proto".into()],
        extension: vec![FieldDescriptorProto {
            name: Some("note".into()),
            number: Some(100),
            extendee: Some(".demo.Hello".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![demo, ext],
    }
    .encode_to_vec()
}

fn names(response: &v1::ServerReflectionResponse) -> Vec<String> {
    match response.message_response.as_ref().unwrap() {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                FileDescriptorProto::decode(&bytes[..])
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect(),
        other => panic!("not files: {other:?}"),
    }
}

#[test]
fn v1_answers_every_kind_of_question() {
    run(async {
        let server = Server::builder().build().unwrap();
        let _health = HealthReporter::attach(&server);
        Reflection::from_file_descriptor_set(&descriptors())
            .unwrap()
            .attach(&server);
        let addr = tcp_server(&server);
        let client = v1::server_reflection_client::ServerReflectionClient::new(
            Channel::connect_tcp(addr).await.unwrap(),
        );
        let ask = |request: MessageRequest| v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let requests = vec![
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "demo.Greeter.Say".into(),
            )),
            ask(MessageRequest::FileContainingSymbol(
                "demo.Hello.Inner".into(),
            )),
            ask(MessageRequest::FileByFilename("ext.proto".into())),
            ask(MessageRequest::FileContainingExtension(
                v1::ExtensionRequest {
                    containing_type: "demo.Hello".into(),
                    extension_number: 100,
                },
            )),
            ask(MessageRequest::AllExtensionNumbersOfType(
                "demo.Hello".into(),
            )),
            ask(MessageRequest::FileContainingSymbol(
                "grpc.health.v1.Health".into(),
            )),
            ask(MessageRequest::FileContainingSymbol("demo.Missing".into())),
        ];
        let responses: Vec<v1::ServerReflectionResponse> = client
            .server_reflection_info(futures::stream::iter(requests))
            .await
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(responses.len(), 8);
        match responses[0].message_response.as_ref().unwrap() {
            MessageResponse::ListServicesResponse(list) => {
                let listed: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
                // What the server serves, not every service described.
                assert_eq!(
                    listed,
                    [
                        "grpc.health.v1.Health",
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection",
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(names(&responses[1]), ["demo.proto"]);
        assert_eq!(names(&responses[2]), ["demo.proto"]);
        // A file comes with what it imports.
        assert_eq!(names(&responses[3]), ["ext.proto", "demo.proto"]);
        assert_eq!(names(&responses[4]), ["ext.proto", "demo.proto"]);
        match responses[5].message_response.as_ref().unwrap() {
            MessageResponse::AllExtensionNumbersResponse(numbers) => {
                assert_eq!(numbers.base_type_name, "demo.Hello");
                assert_eq!(numbers.extension_number, [100]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(names(&responses[6]), ["grpc/health/v1/health.proto"]);
        match responses[7].message_response.as_ref().unwrap() {
            MessageResponse::ErrorResponse(error) => {
                assert_eq!(error.error_code, p2p_grpc::Code::NotFound as i32);
                assert!(error.error_message.contains("demo.Missing"), "{error:?}");
            }
            other => panic!("{other:?}"),
        }
        // Each answer carries its question.
        assert_eq!(
            responses[1]
                .original_request
                .as_ref()
                .unwrap()
                .message_request,
            Some(MessageRequest::FileContainingSymbol(
                "demo.Greeter.Say".into()
            ))
        );
    });
}

#[test]
fn v1alpha_answers_the_same() {
    run(async {
        let server = Server::builder().build().unwrap();
        Reflection::from_file_descriptor_set(&descriptors())
            .unwrap()
            .attach(&server);
        let addr = tcp_server(&server);
        let client = v1alpha::server_reflection_client::ServerReflectionClient::new(
            Channel::connect_tcp(addr).await.unwrap(),
        );
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "demo.Kind".into(),
                ),
            ),
        };
        let mut responses = client
            .server_reflection_info(futures::stream::iter(vec![request]))
            .await
            .unwrap();
        let response = responses.next().await.unwrap().unwrap();
        match response.message_response.unwrap() {
            v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files) => {
                let file =
                    FileDescriptorProto::decode(&files.file_descriptor_proto[0][..]).unwrap();
                assert_eq!(file.name(), "demo.proto");
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn garbage_descriptors_are_an_error() {
    assert!(Reflection::from_file_descriptor_set(b"\xff\xff\xff").is_err());
}
