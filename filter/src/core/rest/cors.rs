//! CORS for the transcoded API (`json2grpc.rest.cors`): which origins may call it from a
//! browser, the headers of a preflight answer and of every response to an allowed origin.
//!
//! The filter applies the policy itself, from the request it saw first: Envoy's CORS filter
//! reads its policy from the route, and the route changes when `:path` becomes the gRPC path.
//! Origins echoed into headers are only ones the policy allows (exact text, or a pattern whose
//! wildcard matched host characters), so no client text reaches a header unchecked.

/// Longest `access-control-request-headers` echoed back (for `allow_headers: ["*"]`).
const MAX_ECHOED_HEADERS: usize = 4096;

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// `https://app.example.com`, compared without regard to letter case.
    Exact(String),
    /// `https://*.example.com`, `http://localhost:*`: one `*` standing for one or more host
    /// characters (letters, digits, `-`, `.`).
    Wildcard { prefix: String, suffix: String },
}

impl OriginPattern {
    /// Reads a pattern of the config; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text == "*" {
            return Ok(OriginPattern::Any);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(format!("origin {text:?}: only visible ASCII characters, no commas"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!("origin {text:?}: expected scheme://host[:port]"));
        };
        if scheme.is_empty() || rest.is_empty() || rest.contains('/') {
            return Err(format!("origin {text:?}: expected scheme://host[:port], without a path"));
        }
        match text.matches('*').count() {
            0 => Ok(OriginPattern::Exact(text.to_ascii_lowercase())),
            1 if !scheme.contains('*') => {
                let (prefix, suffix) = text.split_once('*').unwrap_or((text, ""));
                Ok(OriginPattern::Wildcard { prefix: prefix.to_ascii_lowercase(), suffix: suffix.to_ascii_lowercase() })
            }
            _ => Err(format!("origin {text:?}: at most one '*', in the host or port")),
        }
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            OriginPattern::Wildcard { prefix, suffix } => {
                let (Some(head), Some(tail)) = (
                    origin.get(..prefix.len()),
                    origin.len().checked_sub(suffix.len()).and_then(|at| origin.get(at..)),
                ) else {
                    return false;
                };
                let middle = origin.get(prefix.len()..origin.len() - suffix.len());
                head.eq_ignore_ascii_case(prefix)
                    && tail.eq_ignore_ascii_case(suffix)
                    && middle.is_some_and(|m| {
                        !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    })
            }
        }
    }
}

/// The policy of `json2grpc.rest.cors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    pub allow_origins: Vec<OriginPattern>,
    /// Request headers a page may send (lower case); `*` echoes what a preflight asks for.
    pub allow_headers: Vec<String>,
    /// Response headers a page may read beyond the CORS-safelisted ones.
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer.
    pub max_age: Option<u32>,
}

/// Whether a header name of the config is a valid token (RFC 9110 `tchar`), or `*`.
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl CorsPolicy {
    /// The request's `origin`, if the policy allows it: the value to echo.
    pub fn allowed_origin<'a>(&self, origin: Option<&'a [u8]>) -> Option<&'a str> {
        let origin = std::str::from_utf8(origin?).ok()?;
        // A browser sends one origin; anything else (a list, spaces) is not echoed.
        if origin.is_empty() || !origin.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return None;
        }
        self.allow_origins.iter().any(|p| p.matches(origin)).then_some(origin)
    }

    /// Headers of any response to an allowed `origin` (added to, or replacing, the response's).
    pub fn response_headers(&self, origin: &str, vary: Option<&[u8]>) -> Vec<(&'static str, Vec<u8>)> {
        let mut headers =
            vec![("access-control-allow-origin", origin.as_bytes().to_vec()), ("vary", with_origin(vary))];
        if self.allow_credentials {
            headers.push(("access-control-allow-credentials", b"true".to_vec()));
        }
        if !self.expose_headers.is_empty() {
            headers.push(("access-control-expose-headers", self.expose_headers.join(", ").into_bytes()));
        }
        headers
    }

    /// The answer to a preflight from an allowed `origin` for a path bound to `methods`.
    pub fn preflight_headers(
        &self,
        origin: &str,
        methods: &[&str],
        requested_headers: Option<&[u8]>,
    ) -> Vec<(&'static str, Vec<u8>)> {
        let mut headers = vec![
            ("access-control-allow-origin", origin.as_bytes().to_vec()),
            ("access-control-allow-methods", methods.join(", ").into_bytes()),
            ("vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_vec()),
        ];
        let allowed = if self.allow_headers.iter().any(|h| h == "*") {
            requested_headers.filter(|h| echoable(h)).map(<[u8]>::to_vec)
        } else if self.allow_headers.is_empty() {
            None
        } else {
            Some(self.allow_headers.join(", ").into_bytes())
        };
        if let Some(allowed) = allowed.filter(|h| !h.is_empty()) {
            headers.push(("access-control-allow-headers", allowed));
        }
        if self.allow_credentials {
            headers.push(("access-control-allow-credentials", b"true".to_vec()));
        }
        if let Some(age) = self.max_age {
            headers.push(("access-control-max-age", age.to_string().into_bytes()));
        }
        headers
    }
}

/// A preflight's `access-control-request-headers` is echoed only as a list of header names.
fn echoable(value: &[u8]) -> bool {
    value.len() <= MAX_ECHOED_HEADERS
        && value.split(|b| *b == b',').all(|name| {
            let name = name.trim_ascii();
            std::str::from_utf8(name).is_ok_and(|n| n.is_empty() || valid_header_name(n))
        })
}

/// `vary` with `Origin` added (the answer differs by origin: caches must keep them apart).
fn with_origin(vary: Option<&[u8]>) -> Vec<u8> {
    match vary.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty()) {
        None => b"Origin".to_vec(),
        Some(v) if v.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"origin") || t == b"*") => {
            v.to_vec()
        }
        Some(v) => [v, b", Origin"].concat(),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn policy(origins: &[&str]) -> CorsPolicy {
        CorsPolicy {
            allow_origins: origins.iter().map(|o| OriginPattern::parse(o).unwrap()).collect(),
            ..Default::default()
        }
    }

    fn allows(p: &CorsPolicy, origin: &str) -> bool {
        p.allowed_origin(Some(origin.as_bytes())).is_some()
    }

    #[test]
    fn exact_origins_and_wildcards() {
        let p = policy(&["https://app.example.com", "https://*.shop.example", "http://localhost:*"]);
        assert!(allows(&p, "https://app.example.com"));
        assert!(allows(&p, "HTTPS://APP.example.com"));
        assert!(!allows(&p, "https://app.example.com.evil.test"));
        assert!(!allows(&p, "http://app.example.com"));
        assert!(allows(&p, "https://eu.shop.example"));
        assert!(allows(&p, "https://a.b.shop.example"));
        assert!(!allows(&p, "https://.shop.example"), "the wildcard is one or more characters");
        assert!(!allows(&p, "https://shop.example"));
        assert!(!allows(&p, "https://evil.test/x.shop.example"), "a path is no host");
        assert!(!allows(&p, "https://evil.test?.shop.example"));
        assert!(allows(&p, "http://localhost:5173"));
        assert!(!allows(&p, "http://localhost:"));
        assert!(!allows(&p, "http://localhost:80, https://evil.test"), "one origin only");
        assert!(!allows(&p, ""));
        assert!(p.allowed_origin(None).is_none());
        assert!(p.allowed_origin(Some(b"\xff")).is_none());
        assert!(allows(&policy(&["*"]), "https://anything.test"));
        assert!(!allows(&policy(&["*"]), "https://a.test https://b.test"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in
            ["app.example.com", "https://", "https://a.test/", "https://*.*.test", "*://a.test", "https://a b", ""]
        {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(OriginPattern::parse("null").map_err(|e| e.contains("scheme")), Err(true));
    }

    #[test]
    fn response_headers_add_origin_to_vary() {
        let p = CorsPolicy {
            allow_credentials: true,
            expose_headers: vec!["location".into(), "x-request-id".into()],
            ..policy(&["https://a.test"])
        };
        let h = p.response_headers("https://a.test", None);
        assert_eq!(
            h,
            vec![
                ("access-control-allow-origin", b"https://a.test".to_vec()),
                ("vary", b"Origin".to_vec()),
                ("access-control-allow-credentials", b"true".to_vec()),
                ("access-control-expose-headers", b"location, x-request-id".to_vec()),
            ]
        );
        assert_eq!(with_origin(Some(b"Accept-Encoding")), b"Accept-Encoding, Origin");
        assert_eq!(with_origin(Some(b"accept, origin")), b"accept, origin");
        assert_eq!(with_origin(Some(b"*")), b"*");
        assert_eq!(with_origin(Some(b" ")), b"Origin");
    }

    #[test]
    fn preflight_headers_name_the_methods_and_headers() {
        let p = CorsPolicy {
            allow_headers: vec!["content-type".into(), "x-trace".into()],
            max_age: Some(600),
            ..policy(&["https://a.test"])
        };
        let h = p.preflight_headers("https://a.test", &["GET", "PATCH"], Some(b"x-other"));
        let get = |name: &str| h.iter().find(|(k, _)| *k == name).map(|(_, v)| String::from_utf8(v.clone()).unwrap());
        assert_eq!(get("access-control-allow-methods").as_deref(), Some("GET, PATCH"));
        assert_eq!(get("access-control-allow-headers").as_deref(), Some("content-type, x-trace"));
        assert_eq!(get("access-control-max-age").as_deref(), Some("600"));
        assert_eq!(get("access-control-allow-credentials"), None);
        // `*` echoes the requested names, only when they are names.
        let star = CorsPolicy { allow_headers: vec!["*".into()], ..p.clone() };
        let h = star.preflight_headers("https://a.test", &["GET"], Some(b"content-type, x-trace"));
        assert!(h.contains(&("access-control-allow-headers", b"content-type, x-trace".to_vec())));
        for bad in [&b"x\r\nset-cookie: a"[..], b"a b", &[b'a'; 5000]] {
            let h = star.preflight_headers("https://a.test", &["GET"], Some(bad));
            assert!(!h.iter().any(|(k, _)| *k == "access-control-allow-headers"), "{bad:?}");
        }
        assert!(valid_header_name("x-trace") && !valid_header_name("x trace") && !valid_header_name(""));
    }
}
