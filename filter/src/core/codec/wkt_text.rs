//! The string forms of Timestamp, Duration and FieldMask (proto3 JSON), parsed strictly and
//! printed canonically — the same accept/reject sets as the reflection path.
use std::str::FromStr;

const MAX_DURATION_SECONDS: u64 = 315_576_000_000;
const MAX_DURATION_NANOS: u32 = 999_999_999;
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM)` → (seconds, nanos).
pub fn parse_timestamp(text: &str) -> Result<(i64, i32), String> {
    strict_rfc3339(text)?;
    let t = prost_types::Timestamp::from_str(text).map_err(|e| format!("invalid timestamp {text:?}: {e}"))?;
    if t.seconds < MIN_TIMESTAMP_SECONDS || t.seconds > MAX_TIMESTAMP_SECONDS {
        return Err(format!("timestamp {text:?} out of range"));
    }
    Ok((t.seconds, t.nanos))
}

pub fn format_timestamp(seconds: i64, nanos: i32, out: &mut Vec<u8>) -> Result<(), String> {
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) || !(0..=999_999_999).contains(&nanos) {
        return Err("timestamp out of range".to_string());
    }
    let t = prost_types::Timestamp { seconds, nanos };
    out.extend_from_slice(t.to_string().as_bytes());
    Ok(())
}

/// `-1.5s` → (seconds, nanos).
pub fn parse_duration(text: &str) -> Result<(i64, i32), String> {
    let d = prost_types::Duration::from_str(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if d.seconds.unsigned_abs() > MAX_DURATION_SECONDS || d.nanos.unsigned_abs() > MAX_DURATION_NANOS {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok((d.seconds, d.nanos))
}

pub fn format_duration(seconds: i64, nanos: i32, out: &mut Vec<u8>) -> Result<(), String> {
    if seconds.unsigned_abs() > MAX_DURATION_SECONDS
        || nanos.unsigned_abs() > MAX_DURATION_NANOS
        || (seconds > 0 && nanos < 0)
        || (seconds < 0 && nanos > 0)
    {
        return Err("duration out of range".to_string());
    }
    let d = prost_types::Duration { seconds, nanos };
    out.extend_from_slice(d.to_string().as_bytes());
    Ok(())
}

/// `a.fooBar,b` → `["a.foo_bar", "b"]` (empty paths dropped; `_` in the JSON form is invalid).
pub fn parse_field_mask(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|path| {
            let mut result = String::with_capacity(path.len() + 4);
            for ch in path.chars() {
                if ch.is_ascii_uppercase() {
                    result.push('_');
                    result.push(ch.to_ascii_lowercase());
                } else if ch == '_' {
                    return Err(format!("invalid field mask {text:?}"));
                } else {
                    result.push(ch);
                }
            }
            Ok(result)
        })
        .collect()
}

/// One snake_case path → lowerCamelCase, refusing paths that would not round-trip.
pub fn field_mask_path_to_json(path: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let mut upper_next = false;
    for ch in path.chars() {
        if ch.is_ascii_uppercase() {
            return Err(format!("field mask path {path:?} cannot be written in JSON"));
        }
        if upper_next {
            let upper = ch.to_ascii_uppercase();
            if upper == ch {
                return Err(format!("field mask path {path:?} cannot be written in JSON"));
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(upper.encode_utf8(&mut buf).as_bytes());
            upper_next = false;
        } else if ch == '_' {
            upper_next = true;
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(())
}

fn strict_rfc3339(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let mut i = 0usize;
    let digits = |i: &mut usize, n: usize| -> bool {
        let ok = b.get(*i..(*i).saturating_add(n)).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
        if ok {
            *i += n;
        }
        ok
    };
    let ch = |i: &mut usize, c: u8| -> bool {
        let ok = b.get(*i) == Some(&c);
        if ok {
            *i += 1;
        }
        ok
    };
    let bad = || Err(format!("invalid RFC 3339 timestamp {v:?}"));
    if !(digits(&mut i, 4) && ch(&mut i, b'-') && digits(&mut i, 2) && ch(&mut i, b'-') && digits(&mut i, 2)) {
        return bad();
    }
    if !ch(&mut i, b'T') {
        return bad();
    }
    if !(digits(&mut i, 2) && ch(&mut i, b':') && digits(&mut i, 2) && ch(&mut i, b':') && digits(&mut i, 2)) {
        return bad();
    }
    if ch(&mut i, b'.') {
        if !digits(&mut i, 1) {
            return bad();
        }
        while digits(&mut i, 1) {}
    }
    if ch(&mut i, b'+') || ch(&mut i, b'-') {
        if !(digits(&mut i, 2) && ch(&mut i, b':') && digits(&mut i, 2)) {
            return bad();
        }
    } else if !ch(&mut i, b'Z') {
        return bad();
    }
    if i != b.len() {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok((0, 0)));
        assert_eq!(parse_timestamp("2024-01-02T03:04:05.5+01:00"), Ok((1704161045, 500_000_000)));
        for bad in ["1970-01-01 00:00:00Z", "1970-01-01T00:00:00z", "1970-01-01T00:00:00", "0000-01-01T00:00:00Z", "x"]
        {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
        let mut out = Vec::new();
        format_timestamp(1704164645, 500_000_000, &mut out).unwrap();
        assert_eq!(out, b"2024-01-02T03:04:05.500Z");
        assert!(format_timestamp(MAX_TIMESTAMP_SECONDS + 1, 0, &mut out).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("-1.5s"), Ok((-1, -500_000_000)));
        assert!(parse_duration("315576000001s").is_err());
        assert!(parse_duration("1.5").is_err());
        let mut out = Vec::new();
        format_duration(-1, -500_000_000, &mut out).unwrap();
        assert_eq!(out, b"-1.500s");
        assert!(format_duration(1, -1, &mut out).is_err());
    }

    #[test]
    fn field_masks() {
        assert_eq!(parse_field_mask("a.fooBar,,b"), Ok(vec!["a.foo_bar".to_string(), "b".to_string()]));
        assert!(parse_field_mask("foo_bar").is_err());
        let mut out = Vec::new();
        field_mask_path_to_json("a.foo_bar", &mut out).unwrap();
        assert_eq!(out, b"a.fooBar");
        assert!(field_mask_path_to_json("foo__bar", &mut Vec::new()).is_err());
        assert!(field_mask_path_to_json("fooBar", &mut Vec::new()).is_err());
    }
}
