//! gRPC status codes and their HTTP mapping (the table Envoy's transcoder uses).

/// A gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Codes outside 0..=16 are UNKNOWN, as gRPC clients treat them.
    pub fn from_i32(code: i32) -> Code {
        use Code::*;
        match code {
            0 => Ok,
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// Parses a `grpc-status` header value; `None` when it is not a number.
    pub fn from_header(value: &[u8]) -> Option<Code> {
        let text = std::str::from_utf8(value).ok()?;
        text.trim().parse::<i32>().ok().map(Code::from_i32)
    }

    pub fn http_status(self) -> u16 {
        use Code::*;
        match self {
            Ok => 200,
            Cancelled => 499,
            Unknown => 500,
            InvalidArgument => 400,
            DeadlineExceeded => 504,
            NotFound => 404,
            AlreadyExists => 409,
            PermissionDenied => 403,
            ResourceExhausted => 429,
            FailedPrecondition => 400,
            Aborted => 409,
            OutOfRange => 400,
            Unimplemented => 501,
            Internal => 500,
            Unavailable => 503,
            DataLoss => 500,
            Unauthenticated => 401,
        }
    }
}
