//! `json2grpc.rest`: the REST contract controls (README "REST contract"). Every one is off
//! unless set, so a config of the native filter behaves as it does there.
use serde_json::Value;

use super::{boolean, object, positive, strings, uint32, unknown, wrong_type, ConfigError};
use crate::core::rest::cors::{valid_header_name, CorsPolicy, OriginPattern};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestOptions {
    /// `patch_field_mask`: a PATCH whose body is a message field fills the request's
    /// FieldMask from the body's keys when the URL does not set it.
    pub patch_field_mask: bool,
    /// `status_from_metadata`: the initial metadata `x-http-code` sets a success's status.
    pub status_from_metadata: bool,
    /// `success_status`: `pkg.Service.Method` → the status of its successful responses.
    /// Sorted by method, which appears once: every successful response looks its method up.
    pub success_status: Vec<(String, u16)>,
    /// `int64_as_numbers`: (u)int64 and their wrappers printed as JSON numbers.
    pub int64_as_numbers: bool,
    /// `reject_unknown_fields`: an unknown JSON key is a 400 naming it.
    pub reject_unknown_fields: bool,
    /// `field_behavior`: `google.api.field_behavior` REQUIRED fields must be set, OUTPUT_ONLY
    /// fields sent by a client are dropped.
    pub field_behavior: bool,
    pub cors: Option<CorsPolicy>,
}

impl RestOptions {
    /// The configured success status of a method (`pkg.Service.Method`).
    pub fn success_status_of(&self, method: &str) -> Option<u16> {
        let found = self.success_status.binary_search_by(|(m, _)| m.as_str().cmp(method)).ok()?;
        self.success_status.get(found).map(|(_, s)| *s)
    }
}

pub(super) fn parse(field: &str, value: &Value) -> Result<RestOptions, ConfigError> {
    let mut o = RestOptions::default();
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        match field.name.as_str() {
            "patch_field_mask" => o.patch_field_mask = boolean(f, value)?,
            "status_from_metadata" => o.status_from_metadata = boolean(f, value)?,
            "int64_as_numbers" => o.int64_as_numbers = boolean(f, value)?,
            "reject_unknown_fields" => o.reject_unknown_fields = boolean(f, value)?,
            "field_behavior" => o.field_behavior = boolean(f, value)?,
            "success_status" => o.success_status = success_status(f, value)?,
            "cors" => o.cors = Some(cors(f, value)?),
            _ => return Err(unknown(f)),
        }
    }
    Ok(o)
}

/// `{"pkg.Service.Method": 201}`; the method names are checked against the API later.
fn success_status(field: &str, value: &Value) -> Result<Vec<(String, u16)>, ConfigError> {
    // Keys are method names: not normalised to snake_case.
    let Value::Object(map) = value else {
        return Err(wrong_type(field, "an object of method name (pkg.Service.Method) to HTTP status", value));
    };
    let mut statuses = map
        .iter()
        .map(|(method, status)| {
            let f = format!("{field}.{method}");
            match uint32(&f, status)? {
                s @ 200..=299 => Ok((method.clone(), s as u16)),
                other => Err(ConfigError::new(f, format!("{other} is not a success status (200-299)"))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A JSON object's keys are unique.
    statuses.sort_unstable();
    Ok(statuses)
}

fn cors(field: &str, value: &Value) -> Result<CorsPolicy, ConfigError> {
    let mut p = CorsPolicy::default();
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        match field.name.as_str() {
            "allow_origins" => {
                p.allow_origins = strings(f, value)?
                    .iter()
                    .map(|o| OriginPattern::parse(o).map_err(|e| ConfigError::new(f, e)))
                    .collect::<Result<_, _>>()?
            }
            "allow_headers" => p.allow_headers = header_names(f, value)?,
            "expose_headers" => p.expose_headers = header_names(f, value)?,
            "allow_credentials" => p.allow_credentials = boolean(f, value)?,
            "max_age" => p.max_age = Some(positive(f, value)?),
            _ => return Err(unknown(f)),
        }
    }
    if p.allow_origins.is_empty() {
        return Err(ConfigError::new(format!("{field}.allow_origins"), "required: the origins that may call the API"));
    }
    if p.allow_credentials && p.allow_origins.contains(&OriginPattern::Any) {
        // Echoing any origin with credentials lets every site call the API as the user.
        return Err(ConfigError::new(
            format!("{field}.allow_credentials"),
            "cannot be true when allow_origins has \"*\": name the origins",
        ));
    }
    Ok(p)
}

/// A list of header names (or one comma-separated string, as Envoy's CORS policy writes
/// them), lower-cased.
fn header_names(field: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let mut names = Vec::new();
    for item in strings(field, value)? {
        for name in item.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !valid_header_name(name) {
                return Err(ConfigError::new(field, format!("{name:?} is not a header name")));
            }
            names.push(name.to_ascii_lowercase());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::Config;
    use super::*;

    fn rest(json: &str) -> Result<RestOptions, ConfigError> {
        Config::from_json(format!(r#"{{"proto_descriptor_bin": "", "json2grpc": {{"rest": {json}}}}}"#).as_bytes())
            .map(|c| c.rest)
    }

    #[test]
    fn everything_is_off_by_default() {
        assert_eq!(Config::from_json(br#"{"proto_descriptor_bin": ""}"#).unwrap().rest, RestOptions::default());
        assert_eq!(rest("{}").unwrap(), RestOptions::default());
    }

    #[test]
    fn reads_every_option() {
        let o = rest(
            r#"{"patchFieldMask": true, "status_from_metadata": "yes", "int64AsNumbers": true,
                "reject_unknown_fields": true, "field_behavior": true,
                "success_status": {"a.B.Create": 201, "a.B.Delete": "204"},
                "cors": {"allow_origins": ["https://a.test", "https://*.b.test"], "allowHeaders": "Content-Type, X-Trace",
                         "expose_headers": ["location"], "allow_credentials": true, "max_age": 600}}"#,
        )
        .unwrap();
        assert!(o.patch_field_mask && o.status_from_metadata && o.int64_as_numbers);
        assert!(o.reject_unknown_fields && o.field_behavior);
        assert_eq!(o.success_status_of("a.B.Create"), Some(201));
        assert_eq!(o.success_status_of("a.B.Delete"), Some(204));
        assert_eq!(o.success_status_of("a.B.Get"), None);
        let cors = o.cors.unwrap();
        assert_eq!(cors.allow_headers, vec!["content-type", "x-trace"]);
        assert_eq!(cors.expose_headers, vec!["location"]);
        assert_eq!(cors.allow_origins.len(), 2);
        assert!(cors.allow_credentials);
        assert_eq!(cors.max_age, Some(600));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"bogus": 1}"#, "json2grpc.rest.bogus", "unknown"),
            (r#"{"success_status": {"a.B.C": 404}}"#, "json2grpc.rest.success_status.a.B.C", "200-299"),
            (r#"{"success_status": {"a.B.C": "x"}}"#, "json2grpc.rest.success_status.a.B.C", "unsigned"),
            (r#"{"success_status": [201]}"#, "json2grpc.rest.success_status", "object"),
            (r#"{"cors": {}}"#, "json2grpc.rest.cors.allow_origins", "required"),
            (r#"{"cors": {"allow_origins": ["a.test"]}}"#, "json2grpc.rest.cors.allow_origins", "scheme"),
            (
                r#"{"cors": {"allow_origins": "*", "allow_credentials": true}}"#,
                "json2grpc.rest.cors.allow_credentials",
                "name the origins",
            ),
            (
                r#"{"cors": {"allow_origins": "*", "allow_headers": ["x y"]}}"#,
                "json2grpc.rest.cors.allow_headers",
                "header name",
            ),
            (r#"{"cors": {"allow_origins": "*", "max_age": 0}}"#, "json2grpc.rest.cors.max_age", "greater than 0"),
            (r#"{"cors": {"allow_origins": "*", "x": 1}}"#, "json2grpc.rest.cors.x", "unknown"),
        ];
        for (json, field, text) in cases {
            let e = rest(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.message.contains(text), "{json}: {e}");
        }
    }
}
