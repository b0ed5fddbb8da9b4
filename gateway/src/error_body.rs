//! Completes S3 error bodies as AWS writes them: every `<Error>` carries a `<Message>`, the
//! request id and the host id, whichever layer (s3s or a handler) produced it.

use bytes::Bytes;

/// The message AWS sends with an error code, for errors raised without one.
fn default_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied" => "Access Denied",
        "AuthorizationHeaderMalformed" => "The authorization header is malformed.",
        "BadDigest" => "The Content-MD5 or checksum value that you specified did not match what the server received.",
        "EntityTooLarge" => "Your proposed upload exceeds the maximum allowed object size.",
        "IncompleteBody" => "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        "InvalidAccessKeyId" => "The AWS access key ID that you provided does not exist in our records.",
        "InvalidArgument" => "Invalid Argument",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "InvalidDigest" => "The Content-MD5 or checksum value that you specified is not valid.",
        "InvalidRequest" => "Invalid Request",
        "MalformedXML" => "The XML that you provided was not well formed or did not validate against our published schema.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "NotImplemented" => "A header that you provided implies functionality that is not implemented.",
        "RequestTimeTooSkewed" => "The difference between the request time and the server's time is too large.",
        "SignatureDoesNotMatch" => {
            "The request signature that we calculated does not match the signature that you provided. Check your AWS secret access key and signing method."
        }
        "XAmzContentSHA256Mismatch" => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        _ => return None,
    })
}

/// The error body with a default `<Message>` when it had none, and `<RequestId>` and `<HostId>`;
/// `None` when `body` is not an S3 error document.
pub fn complete(body: &[u8], request_id: &str, host_id: &str) -> Option<Bytes> {
    let text = std::str::from_utf8(body).ok()?;
    let end = text.rfind("</Error>")?;
    let code = element(text, "Code")?;
    let mut out = String::with_capacity(text.len() + 160);
    out.push_str(&text[..end]);
    if element(text, "Message").is_none() {
        if let Some(message) = default_message(code) {
            push_element(&mut out, "Message", message);
        }
    }
    if element(text, "RequestId").is_none() {
        push_element(&mut out, "RequestId", request_id);
    }
    if element(text, "HostId").is_none() {
        push_element(&mut out, "HostId", host_id);
    }
    out.push_str(&text[end..]);
    Some(Bytes::from(out))
}

/// The text of the first `<name>` element of a flat error document.
pub fn element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(&text[start..end])
}

/// Appends `<name>value</name>`; the values written here (fixed messages and ids) hold no XML
/// special characters.
fn push_element(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("<{name}>{value}</{name}>"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_gain_message_request_id_and_host_id() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidBucketName</Code></Error>"#;
        let completed = complete(body, "REQ1", "host-a").unwrap();
        assert_eq!(
            std::str::from_utf8(&completed).unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidBucketName</Code><Message>The specified bucket is not valid.</Message><RequestId>REQ1</RequestId><HostId>host-a</HostId></Error>"#
        );
    }

    #[test]
    fn existing_fields_are_kept() {
        let body = b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>R</RequestId></Error>";
        let completed = complete(body, "other", "h").unwrap();
        assert_eq!(
            &completed[..],
            b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>R</RequestId><HostId>h</HostId></Error>"
        );
        assert_eq!(complete(b"not xml", "r", "h"), None);
        assert_eq!(element("<Error><Code>X</Code></Error>", "Code"), Some("X"));
    }
}
