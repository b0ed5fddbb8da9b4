//! The `multipart/form-data` body of a POST Object upload, read as a stream: the fields that
//! come before the `file` part (bounded as AWS bounds them), then the file part as a stream of
//! chunks that is never gathered in memory. Fields after the file are ignored, as AWS does.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use multer::{Field, Multipart};
use s3s::{s3_error, Body, S3Error, S3Result};

/// AWS's bound on the form fields that precede the file: 20 KB, names and values together.
pub const MAX_FIELDS_BYTES: usize = 20 * 1024;

/// The name of the part that carries the object's data.
const FILE_FIELD: &str = "file";

/// A form read up to its file part.
pub struct Form {
    /// Field values by lower-case name (field names are case-insensitive); the first of a
    /// repeated name.
    pub fields: BTreeMap<String, String>,
    /// The file part's `filename`, for `${filename}` in the key.
    pub filename: Option<String>,
    /// The file's data, as it arrives.
    pub file: Field<'static>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> S3Result<String> {
    multer::parse_boundary(content_type).map_err(|_| malformed())
}

/// Reads the fields of `body` up to the file part, which is left unread.
pub async fn read(body: Body, boundary: &str) -> S3Result<Form> {
    let mut multipart = Multipart::new(OneChunkAtATime::new(body), boundary);
    let mut fields = BTreeMap::new();
    let mut size = 0usize;
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(form_error)? else {
            return Err(s3_error!(InvalidArgument, "POST requires exactly one file upload per request."));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        size += name.len();
        if name == FILE_FIELD {
            let filename = field.file_name().map(str::to_owned);
            return Ok(Form { fields, filename, file: field });
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            size += chunk.len();
            if size > MAX_FIELDS_BYTES {
                return Err(s3_error!(
                    MaxPostPreDataLengthExceededError,
                    "Your POST request fields preceding the upload file were too large."
                ));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| malformed())?;
        fields.entry(name).or_insert(value);
    }
}

fn malformed() -> S3Error {
    s3_error!(MalformedPOSTRequest, "The body of your POST request is not well-formed multipart/form-data.")
}

/// A body that failed to arrive is the client's incomplete request; anything else is a form
/// that does not parse.
pub fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(_) => {
            s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            )
        }
        _ => malformed(),
    }
}

/// Hands the parser one chunk per poll. The parser pulls chunks until its source is pending,
/// so a client sending faster than the file is stored would otherwise pile data up in its
/// buffer; yielding after each chunk keeps what it holds to about one chunk.
struct OneChunkAtATime {
    body: Body,
    yielded: bool,
}

impl OneChunkAtATime {
    fn new(body: Body) -> Self {
        Self { body, yielded: false }
    }
}

impl Stream for OneChunkAtATime {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if std::mem::take(&mut self.yielded) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = Pin::new(&mut self.body).poll_next(cx);
        if matches!(next, Poll::Ready(Some(Ok(_)))) {
            self.yielded = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn body(parts: &[(&str, Option<&str>, &str)], boundary: &str) -> Body {
        let mut text = String::new();
        for (name, filename, value) in parts {
            text.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""));
            if let Some(filename) = filename {
                text.push_str(&format!("; filename=\"{filename}\""));
            }
            text.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        text.push_str(&format!("--{boundary}--\r\n"));
        Body::from(text)
    }

    #[tokio::test]
    async fn fields_are_read_up_to_the_file_and_the_file_streams() {
        let parts = [
            ("Key", None, "a/${filename}"),
            ("key", None, "second"),
            ("file", Some("f.txt"), "data"),
            ("acl", None, "x"),
        ];
        let mut form = read(body(&parts, "XyZ"), "XyZ").await.unwrap();
        assert_eq!(form.fields.get("key").map(String::as_str), Some("a/${filename}"), "first value, any case");
        assert!(!form.fields.contains_key("acl"), "fields after the file are ignored");
        assert_eq!(form.filename.as_deref(), Some("f.txt"));
        let mut data = Vec::new();
        while let Some(chunk) = form.file.next().await {
            data.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(data, b"data");
    }

    #[tokio::test]
    async fn a_form_without_a_file_or_with_large_fields_is_refused() {
        let code = |r: S3Result<Form>| r.err().map(|e| e.code().as_str().to_owned());
        assert_eq!(code(read(body(&[("key", None, "k")], "b"), "b").await).as_deref(), Some("InvalidArgument"));
        let large = "v".repeat(MAX_FIELDS_BYTES);
        let parts = [("key", None, "k"), ("x-amz-meta-big", None, large.as_str()), ("file", Some("f"), "d")];
        assert_eq!(code(read(body(&parts, "b"), "b").await).as_deref(), Some("MaxPostPreDataLengthExceededError"));
        assert_eq!(code(read(Body::from("not a form".to_owned()), "b").await).as_deref(), Some("MalformedPOSTRequest"));
        assert!(boundary("multipart/form-data").is_err());
        assert_eq!(boundary("multipart/form-data; boundary=abc").unwrap(), "abc");
    }
}
