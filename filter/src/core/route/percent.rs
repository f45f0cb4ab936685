//! Percent-decoding (RFC 3986 `%XX`) of path segments and query components.
//!
//! Everything works on bytes: a decoded value may be invalid UTF-8 (`%FF`), and the caller
//! decides whether to reject it. Malformed escapes (`%`, `%4`, `%G1`) are kept literally, as
//! Envoy's grpc_json_transcoder does.
use std::borrow::Cow;

/// Which escapes in a multi-segment path variable are decoded (`url_unescape_spec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlUnescapeSpec {
    /// Decode everything except escapes of RFC 6570 reserved characters
    /// (`!#$&'()*+,/:;=?@[]`), which stay encoded exactly as sent.
    #[default]
    AllCharactersExceptReserved,
    /// Decode everything except `%2F` / `%2f`.
    AllCharactersExceptSlash,
    /// Decode every escape.
    AllCharacters,
}

impl UrlUnescapeSpec {
    /// Whether an escape standing for `byte` is decoded under this spec.
    pub fn decodes(self, byte: u8) -> bool {
        match self {
            UrlUnescapeSpec::AllCharactersExceptReserved => !is_reserved(byte),
            UrlUnescapeSpec::AllCharactersExceptSlash => byte != b'/',
            UrlUnescapeSpec::AllCharacters => true,
        }
    }
}

/// RFC 6570 reserved characters (gen-delims and sub-delims of RFC 3986).
pub fn is_reserved(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'#'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'?'
            | b'@'
            | b'['
            | b']'
    )
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The byte that a well-formed escape at the start of `input` stands for.
fn escape_at(input: &[u8]) -> Option<u8> {
    match input {
        [b'%', high, low, ..] => Some((hex_value(*high)? << 4) | hex_value(*low)?),
        _ => None,
    }
}

/// Decodes `input`, decoding an escape only when `decodes(byte)` says so and, with
/// `unescape_plus`, turning a literal `+` into a space. Borrows when nothing changes.
fn decode_bytes(input: &[u8], decodes: impl Fn(u8) -> bool, unescape_plus: bool) -> Cow<'_, [u8]> {
    let changes_at = |rest: &[u8]| match rest.first() {
        Some(b'%') => escape_at(rest).filter(|&byte| decodes(byte)),
        Some(b'+') if unescape_plus => Some(b' '),
        _ => None,
    };
    // Nothing to do unless some position changes: then no allocation at all.
    let Some(first) = (0..input.len()).find(|&i| input.get(i..).and_then(changes_at).is_some()) else {
        return Cow::Borrowed(input);
    };
    let Some((prefix, mut rest)) = input.split_at_checked(first) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(prefix);
    while let Some((&byte, tail)) = rest.split_first() {
        match changes_at(rest) {
            Some(decoded) => {
                out.push(decoded);
                // A `+` is one byte; an escape is three.
                rest = if byte == b'%' { tail.get(2..).unwrap_or_default() } else { tail };
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes the `%XX` escapes of a path segment according to `spec`. Malformed escapes are
/// kept literally; `+` is not special. Borrows `input` when nothing is decoded.
pub fn decode(input: &str, spec: UrlUnescapeSpec) -> Cow<'_, [u8]> {
    decode_bytes(input.as_bytes(), |byte| spec.decodes(byte), false)
}

/// Fully decodes a query-string name or value; with `unescape_plus` a literal `+` means a space
/// (`%2B` always stays `+`).
pub fn decode_query_component(input: &str, unescape_plus: bool) -> Vec<u8> {
    decode_bytes(input.as_bytes(), |_| true, unescape_plus).into_owned()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use UrlUnescapeSpec::*;

    const ALL_SPECS: [UrlUnescapeSpec; 3] = [AllCharactersExceptReserved, AllCharactersExceptSlash, AllCharacters];

    fn dec(input: &str, spec: UrlUnescapeSpec) -> Vec<u8> {
        decode(input, spec).into_owned()
    }

    #[test]
    fn default_spec_is_all_characters_except_reserved() {
        assert_eq!(UrlUnescapeSpec::default(), AllCharactersExceptReserved);
    }

    #[test]
    fn plain_text_is_borrowed_unchanged_under_every_spec() {
        for spec in ALL_SPECS {
            for input in ["", "abc", "a+b", "shelves/1/books", "caf\u{e9}"] {
                let out = decode(input, spec);
                assert!(matches!(out, Cow::Borrowed(_)), "{input:?} under {spec:?}");
                assert_eq!(&*out, input.as_bytes());
            }
        }
    }

    #[test]
    fn text_whose_escapes_all_stay_encoded_is_borrowed() {
        assert!(matches!(decode("a%2Fb%3A", AllCharactersExceptReserved), Cow::Borrowed(_)));
        assert!(matches!(decode("a%2fb", AllCharactersExceptSlash), Cow::Borrowed(_)));
        assert!(matches!(decode("100%", AllCharacters), Cow::Borrowed(_)));
    }

    #[test]
    fn unreserved_escapes_are_decoded_under_every_spec() {
        for spec in ALL_SPECS {
            assert_eq!(dec("hello%20world", spec), b"hello world");
            assert_eq!(dec("%41%62%63", spec), b"Abc");
            assert_eq!(dec("%7e%7E", spec), b"~~");
            assert_eq!(dec("%25", spec), b"%", "an escaped percent sign is not reserved");
            assert_eq!(dec("%2541", spec), b"%41", "decoding happens once, not recursively");
        }
    }

    #[test]
    fn hex_digits_are_case_insensitive() {
        assert_eq!(dec("%c3%A9%C3%a9", AllCharacters), "\u{e9}\u{e9}".as_bytes());
    }

    #[test]
    fn except_reserved_keeps_every_reserved_escape_as_sent() {
        for c in "!#$&'()*+,/:;=?@[]".bytes() {
            let upper = format!("%{c:02X}");
            let lower = format!("%{c:02x}");
            assert_eq!(dec(&upper, AllCharactersExceptReserved), upper.as_bytes(), "{}", c as char);
            assert_eq!(dec(&lower, AllCharactersExceptReserved), lower.as_bytes(), "{}", c as char);
            assert_eq!(dec(&upper, AllCharacters), [c], "{}", c as char);
        }
    }

    #[test]
    fn except_reserved_decodes_the_unreserved_neighbours_of_reserved_escapes() {
        assert_eq!(dec("a%2Fb%20c%3Ad", AllCharactersExceptReserved), b"a%2Fb c%3Ad");
        // `"`, `<`, `%`, `{` are not RFC 6570 reserved characters.
        assert_eq!(dec("%22%3C%25%7B", AllCharactersExceptReserved), b"\"<%{");
    }

    #[test]
    fn except_slash_keeps_only_the_slash_encoded() {
        assert_eq!(dec("a%2Fb%2fc", AllCharactersExceptSlash), b"a%2Fb%2fc");
        assert_eq!(dec("a%3Ab%2Bc%3F%23", AllCharactersExceptSlash), b"a:b+c?#");
        assert_eq!(dec("x%2F%20", AllCharactersExceptSlash), b"x%2F ");
    }

    #[test]
    fn all_characters_decodes_slashes_too() {
        assert_eq!(dec("a%2Fb%2fc", AllCharacters), b"a/b/c");
        assert_eq!(dec("%3A%2B%3F", AllCharacters), b":+?");
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        for spec in ALL_SPECS {
            assert_eq!(dec("%", spec), b"%");
            assert_eq!(dec("abc%", spec), b"abc%");
            assert_eq!(dec("%4", spec), b"%4");
            assert_eq!(dec("%G1", spec), b"%G1");
            assert_eq!(dec("%1G", spec), b"%1G");
            assert_eq!(dec("% 41", spec), b"% 41");
            assert_eq!(dec("%%41", spec), b"%A", "the second % starts a valid escape");
            assert_eq!(dec("%4%41", spec), b"%4A");
            assert_eq!(dec("%20%", spec), b" %");
            assert_eq!(dec("%-1", spec), b"%-1");
        }
    }

    #[test]
    fn a_percent_before_a_multibyte_character_is_kept() {
        assert_eq!(dec("%\u{e9}", AllCharacters), "%\u{e9}".as_bytes());
        assert_eq!(dec("%4\u{e9}", AllCharacters), "%4\u{e9}".as_bytes());
    }

    #[test]
    fn invalid_utf8_comes_out_as_raw_bytes() {
        assert_eq!(dec("%FF%fe", AllCharacters), [0xFF, 0xFE]);
        assert_eq!(dec("a%C3", AllCharactersExceptReserved), [b'a', 0xC3]);
        assert_eq!(dec("%00", AllCharactersExceptSlash), [0]);
        assert!(String::from_utf8(dec("%C3%28", AllCharacters)).is_err());
    }

    #[test]
    fn plus_is_never_special_in_path_decoding() {
        for spec in ALL_SPECS {
            assert_eq!(dec("a+b", spec), b"a+b");
        }
    }

    #[test]
    fn query_components_are_fully_decoded() {
        assert_eq!(decode_query_component("a%2Fb%3Dc%26d", false), b"a/b=c&d");
        assert_eq!(decode_query_component("Neal%20Stephenson", false), b"Neal Stephenson");
        assert_eq!(decode_query_component("", true), b"");
        assert_eq!(decode_query_component("%FF", false), [0xFF]);
    }

    #[test]
    fn query_plus_means_space_only_when_asked() {
        assert_eq!(decode_query_component("a+b++c", true), b"a b  c");
        assert_eq!(decode_query_component("a+b", false), b"a+b");
        assert_eq!(decode_query_component("+", true), b" ");
    }

    #[test]
    fn an_encoded_plus_stays_a_plus_in_queries() {
        assert_eq!(decode_query_component("1%2B1+%3D+2", true), b"1+1 = 2");
        assert_eq!(decode_query_component("%2b", true), b"+");
    }

    #[test]
    fn malformed_query_escapes_are_kept_literally() {
        assert_eq!(decode_query_component("50%+off", true), b"50% off");
        assert_eq!(decode_query_component("%zz%", false), b"%zz%");
    }

    #[test]
    fn long_input_decodes_in_one_pass() {
        let input = "%41".repeat(100_000);
        let out = dec(&input, AllCharacters);
        assert_eq!(out.len(), 100_000);
        assert!(out.iter().all(|&b| b == b'A'));
        let plain = "a".repeat(1_000_000) + "%20";
        assert_eq!(dec(&plain, AllCharacters).len(), 1_000_001);
    }

    #[test]
    fn is_reserved_matches_rfc_6570() {
        let reserved: Vec<u8> = (0u8..=255).filter(|&b| is_reserved(b)).collect();
        let mut expected = b"!#$&'()*+,/:;=?@[]".to_vec();
        expected.sort_unstable();
        assert_eq!(reserved, expected);
    }
}
