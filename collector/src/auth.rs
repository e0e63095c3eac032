//! Bearer tokens: what pushes and API reads present in `Authorization: Bearer <token>`.

/// A configured bearer token.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(hidden)")
    }
}

impl Token {
    /// The token, `None` when it is empty (an empty token would admit an empty header).
    pub fn new(token: &str) -> Option<Token> {
        let t = token.trim();
        (!t.is_empty()).then(|| Token(t.to_string()))
    }

    /// Whether an `Authorization` header value carries this token. The scheme is
    /// case-insensitive (RFC 9110 §11.1); the comparison takes the same time wherever the
    /// first difference is, so that timing does not reveal how much of a guess was right.
    pub fn admits(&self, header: Option<&str>) -> bool {
        let Some((scheme, presented)) = header.and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(presented.trim().as_bytes(), self.0.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request passes `token` (no token configured: every request does).
pub fn admitted(token: Option<&Token>, header: Option<&str>) -> bool {
    token.is_none_or(|t| t.admits(header))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_exact() {
        let t = Token::new("s3cret\n").unwrap();
        for ok in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret ", " Bearer s3cret"] {
            assert!(t.admits(Some(ok)), "{ok:?}");
        }
        for no in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret", "Bearer", ""] {
            assert!(!t.admits(Some(no)), "{no:?}");
        }
        assert!(!t.admits(None));
        assert!(Token::new("  \n").is_none(), "an empty token is no token");
        assert!(admitted(None, None));
    }
}
