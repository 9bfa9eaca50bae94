//! Rich error details: `google.rpc.Status` in `grpc-status-details-bin`,
//! with the standard error detail messages of `google/rpc/error_details.proto`
//! (field numbers as the public proto defines them), and typed builders and
//! readers on [`Status`].
//!
//! ```
//! use std::time::Duration;
//! use p2p_grpc::error_details::ErrorDetails;
//! use p2p_grpc::{Code, Status};
//!
//! let details = ErrorDetails::new()
//!     .with_bad_request_violation("name", "must not be empty")
//!     .with_retry_info(Duration::from_millis(1500));
//! let status = Status::with_error_details(Code::InvalidArgument, "bad name", details);
//!
//! // On the other side:
//! let read = status.error_details().unwrap();
//! assert_eq!(read.bad_request.unwrap().field_violations[0].field, "name");
//! assert_eq!(read.retry_info.unwrap().retry_delay(), Some(Duration::from_millis(1500)));
//! ```

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use super::status::{Code, Status};

/// `google.protobuf.Any`: a message and the URL of its type.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status`: what `grpc-status-details-bin` carries.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// The status code (the same as `grpc-status`).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// The error details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past them.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`: when the client may retry.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    /// The delay before a retry.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

impl RetryInfo {
    /// The delay, when it is set and not negative.
    pub fn retry_delay(&self) -> Option<Duration> {
        let delay = self.retry_delay?;
        let seconds = u64::try_from(delay.seconds).ok()?;
        let nanos = u32::try_from(delay.nanos).ok()?;
        Some(Duration::new(seconds, nanos))
    }
}

/// `google.rpc.DebugInfo`: a stack trace and more, for debugging.
#[derive(Clone, PartialEq, Message)]
pub struct DebugInfo {
    /// The stack trace entries.
    #[prost(string, repeated, tag = "1")]
    pub stack_entries: Vec<String>,
    /// Any other detail.
    #[prost(string, tag = "2")]
    pub detail: String,
}

/// A quota that was exceeded.
#[derive(Clone, PartialEq, Message)]
pub struct QuotaViolation {
    /// What the quota was counted for ("project:my-project").
    #[prost(string, tag = "1")]
    pub subject: String,
    /// How it was exceeded.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.QuotaFailure`: the quotas a call exceeded.
#[derive(Clone, PartialEq, Message)]
pub struct QuotaFailure {
    /// The violations.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<QuotaViolation>,
}

/// `google.rpc.ErrorInfo`: the reason of an error, in a machine-readable
/// form.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorInfo {
    /// The reason, UPPER_SNAKE_CASE ("API_DISABLED").
    #[prost(string, tag = "1")]
    pub reason: String,
    /// The domain the reason belongs to ("example.com").
    #[prost(string, tag = "2")]
    pub domain: String,
    /// Further structured details.
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

/// A precondition that failed.
#[derive(Clone, PartialEq, Message)]
pub struct PreconditionViolation {
    /// The kind of precondition ("TOS").
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// What it is about.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// How it failed.
    #[prost(string, tag = "3")]
    pub description: String,
}

/// `google.rpc.PreconditionFailure`: the preconditions that failed.
#[derive(Clone, PartialEq, Message)]
pub struct PreconditionFailure {
    /// The violations.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<PreconditionViolation>,
}

/// A request field that is invalid.
#[derive(Clone, PartialEq, Message)]
pub struct FieldViolation {
    /// The field's path ("user.name").
    #[prost(string, tag = "1")]
    pub field: String,
    /// Why it is invalid.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.BadRequest`: the invalid fields of a request.
#[derive(Clone, PartialEq, Message)]
pub struct BadRequest {
    /// The violations.
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}

/// `google.rpc.RequestInfo`: which request failed, for a bug report.
#[derive(Clone, PartialEq, Message)]
pub struct RequestInfo {
    /// An opaque id of the request.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Data the server used, for debugging.
    #[prost(string, tag = "2")]
    pub serving_data: String,
}

/// `google.rpc.ResourceInfo`: the resource the call was about.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceInfo {
    /// The kind of resource.
    #[prost(string, tag = "1")]
    pub resource_type: String,
    /// Its name.
    #[prost(string, tag = "2")]
    pub resource_name: String,
    /// Its owner.
    #[prost(string, tag = "3")]
    pub owner: String,
    /// What went wrong with it.
    #[prost(string, tag = "4")]
    pub description: String,
}

/// A link to documentation.
#[derive(Clone, PartialEq, Message)]
pub struct HelpLink {
    /// What the link is about.
    #[prost(string, tag = "1")]
    pub description: String,
    /// The URL.
    #[prost(string, tag = "2")]
    pub url: String,
}

/// `google.rpc.Help`: where to read more.
#[derive(Clone, PartialEq, Message)]
pub struct Help {
    /// The links.
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<HelpLink>,
}

/// `google.rpc.LocalizedMessage`: a message for the end user.
#[derive(Clone, PartialEq, Message)]
pub struct LocalizedMessage {
    /// The locale ("en-US").
    #[prost(string, tag = "1")]
    pub locale: String,
    /// The message.
    #[prost(string, tag = "2")]
    pub message: String,
}

const TYPE_PREFIX: &str = "type.googleapis.com/google.rpc.";

/// The standard error details of a status, each at most once, and those of
/// other types as they came.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorDetails {
    /// `google.rpc.RetryInfo`.
    pub retry_info: Option<RetryInfo>,
    /// `google.rpc.DebugInfo`.
    pub debug_info: Option<DebugInfo>,
    /// `google.rpc.QuotaFailure`.
    pub quota_failure: Option<QuotaFailure>,
    /// `google.rpc.ErrorInfo`.
    pub error_info: Option<ErrorInfo>,
    /// `google.rpc.PreconditionFailure`.
    pub precondition_failure: Option<PreconditionFailure>,
    /// `google.rpc.BadRequest`.
    pub bad_request: Option<BadRequest>,
    /// `google.rpc.RequestInfo`.
    pub request_info: Option<RequestInfo>,
    /// `google.rpc.ResourceInfo`.
    pub resource_info: Option<ResourceInfo>,
    /// `google.rpc.Help`.
    pub help: Option<Help>,
    /// `google.rpc.LocalizedMessage`.
    pub localized_message: Option<LocalizedMessage>,
    /// Details of other types, undecoded.
    pub other: Vec<Any>,
}

/// Every standard detail, for encoding and decoding each the same way.
macro_rules! each_detail {
    ($m:ident) => {
        $m!(retry_info, RetryInfo);
        $m!(debug_info, DebugInfo);
        $m!(quota_failure, QuotaFailure);
        $m!(error_info, ErrorInfo);
        $m!(precondition_failure, PreconditionFailure);
        $m!(bad_request, BadRequest);
        $m!(request_info, RequestInfo);
        $m!(resource_info, ResourceInfo);
        $m!(help, Help);
        $m!(localized_message, LocalizedMessage);
    };
}

impl ErrorDetails {
    /// No details.
    pub fn new() -> Self {
        ErrorDetails::default()
    }

    /// Sets the retry delay (`RetryInfo`).
    pub fn with_retry_info(mut self, delay: Duration) -> Self {
        self.retry_info = Some(RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        });
        self
    }

    /// Sets the debug information (`DebugInfo`).
    pub fn with_debug_info(
        mut self,
        stack_entries: Vec<String>,
        detail: impl Into<String>,
    ) -> Self {
        self.debug_info = Some(DebugInfo {
            stack_entries,
            detail: detail.into(),
        });
        self
    }

    /// Adds an exceeded quota (`QuotaFailure`).
    pub fn with_quota_violation(
        mut self,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.quota_failure
            .get_or_insert_with(QuotaFailure::default)
            .violations
            .push(QuotaViolation {
                subject: subject.into(),
                description: description.into(),
            });
        self
    }

    /// Sets the machine-readable reason (`ErrorInfo`).
    pub fn with_error_info(
        mut self,
        reason: impl Into<String>,
        domain: impl Into<String>,
        metadata: HashMap<String, String>,
    ) -> Self {
        self.error_info = Some(ErrorInfo {
            reason: reason.into(),
            domain: domain.into(),
            metadata,
        });
        self
    }

    /// Adds a failed precondition (`PreconditionFailure`).
    pub fn with_precondition_violation(
        mut self,
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.precondition_failure
            .get_or_insert_with(PreconditionFailure::default)
            .violations
            .push(PreconditionViolation {
                r#type: kind.into(),
                subject: subject.into(),
                description: description.into(),
            });
        self
    }

    /// Adds an invalid request field (`BadRequest`).
    pub fn with_bad_request_violation(
        mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.bad_request
            .get_or_insert_with(BadRequest::default)
            .field_violations
            .push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        self
    }

    /// Sets which request failed (`RequestInfo`).
    pub fn with_request_info(
        mut self,
        request_id: impl Into<String>,
        serving_data: impl Into<String>,
    ) -> Self {
        self.request_info = Some(RequestInfo {
            request_id: request_id.into(),
            serving_data: serving_data.into(),
        });
        self
    }

    /// Sets the resource concerned (`ResourceInfo`).
    pub fn with_resource_info(
        mut self,
        resource_type: impl Into<String>,
        resource_name: impl Into<String>,
        owner: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.resource_info = Some(ResourceInfo {
            resource_type: resource_type.into(),
            resource_name: resource_name.into(),
            owner: owner.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a documentation link (`Help`).
    pub fn with_help_link(
        mut self,
        description: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        self.help
            .get_or_insert_with(Help::default)
            .links
            .push(HelpLink {
                description: description.into(),
                url: url.into(),
            });
        self
    }

    /// Sets the message for the end user (`LocalizedMessage`).
    pub fn with_localized_message(
        mut self,
        locale: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        self.localized_message = Some(LocalizedMessage {
            locale: locale.into(),
            message: message.into(),
        });
        self
    }

    /// The details as `Any` messages, standard ones first in the order of
    /// the proto, then the others.
    pub fn to_any(&self) -> Vec<Any> {
        let mut any = Vec::new();
        macro_rules! encode {
            ($field:ident, $ty:ident) => {
                if let Some(detail) = &self.$field {
                    any.push(Any {
                        type_url: format!("{TYPE_PREFIX}{}", stringify!($ty)),
                        value: detail.encode_to_vec(),
                    });
                }
            };
        }
        each_detail!(encode);
        any.extend(self.other.iter().cloned());
        any
    }

    /// Reads `Any` messages: the standard types into their fields (a later
    /// one of a type replaces an earlier), the others into `other`.
    pub fn from_any(details: &[Any]) -> Result<Self, prost::DecodeError> {
        let mut out = ErrorDetails::new();
        'details: for detail in details {
            let name = detail.type_url.strip_prefix(TYPE_PREFIX);
            macro_rules! decode {
                ($field:ident, $ty:ident) => {
                    if name == Some(stringify!($ty)) {
                        out.$field = Some($ty::decode(&detail.value[..])?);
                        continue 'details;
                    }
                };
            }
            each_detail!(decode);
            out.other.push(detail.clone());
        }
        Ok(out)
    }
}

impl Status {
    /// A status whose details are `google.rpc.Status` with `details`, as
    /// grpc-go's `status.WithDetails` and grpcio-status send them.
    pub fn with_error_details(
        code: Code,
        message: impl Into<String>,
        details: ErrorDetails,
    ) -> Status {
        let message = message.into();
        let rpc = RpcStatus {
            code: code as i32,
            message: message.clone(),
            details: details.to_any(),
        };
        Status::with_details(code, message, Bytes::from(rpc.encode_to_vec()))
    }

    /// The `google.rpc.Status` in the details, if any: empty details give
    /// an empty one; bytes that are not one are an error.
    pub fn rpc_status(&self) -> Result<RpcStatus, prost::DecodeError> {
        RpcStatus::decode(&self.details()[..])
    }

    /// The standard error details the status carries (see
    /// [`with_error_details`](Self::with_error_details)).
    pub fn error_details(&self) -> Result<ErrorDetails, prost::DecodeError> {
        ErrorDetails::from_any(&self.rpc_status()?.details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detail_round_trips_through_a_status() {
        let mut metadata = HashMap::new();
        metadata.insert("service".to_owned(), "example.com".to_owned());
        let details = ErrorDetails::new()
            .with_retry_info(Duration::new(3, 500))
            .with_debug_info(vec!["main.rs:1".into()], "boom")
            .with_quota_violation("project:x", "daily limit")
            .with_error_info("API_DISABLED", "example.com", metadata)
            .with_precondition_violation("TOS", "user:1", "not accepted")
            .with_bad_request_violation("name", "empty")
            .with_bad_request_violation("age", "negative")
            .with_request_info("req-1", "shard 7")
            .with_resource_info("book", "shelves/1/books/2", "me", "missing")
            .with_help_link("docs", "https://example.com/help")
            .with_localized_message("en-US", "Try again");
        let status = Status::with_error_details(Code::FailedPrecondition, "nope", details.clone());
        let rpc = status.rpc_status().unwrap();
        assert_eq!(rpc.code, 9);
        assert_eq!(rpc.message, "nope");
        assert_eq!(rpc.details.len(), 10);
        assert_eq!(
            rpc.details[0].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        assert_eq!(status.error_details().unwrap(), details);
        assert_eq!(
            details.retry_info.unwrap().retry_delay(),
            Some(Duration::new(3, 500))
        );
    }

    #[test]
    fn unknown_types_are_kept_and_garbage_is_an_error() {
        let other = Any {
            type_url: "type.googleapis.com/acme.Custom".into(),
            value: vec![1, 2, 3],
        };
        let details = ErrorDetails {
            other: vec![other.clone()],
            ..ErrorDetails::new()
        };
        let status = Status::with_error_details(Code::Internal, "x", details);
        assert_eq!(status.error_details().unwrap().other, [other]);
        assert_eq!(
            Status::internal("plain").error_details().unwrap(),
            ErrorDetails::new()
        );
        let garbage =
            Status::with_details(Code::Internal, "x", Bytes::from_static(b"\xff\xff\xff"));
        assert!(garbage.error_details().is_err());
        // A negative delay is no delay.
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: -1,
                nanos: 0,
            }),
        };
        assert_eq!(info.retry_delay(), None);
    }
}
