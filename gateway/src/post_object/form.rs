//! The `multipart/form-data` body of a POST Object upload, read as a stream: the fields that
//! come before the `file` part (bounded as AWS bounds them), then the file part as a stream of
//! chunks that is never gathered in memory. Fields after the file are ignored, as AWS does.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use multer::{Field, Multipart};
use s3s::{s3_error, Body, S3Error, S3Result};

/// AWS's bound on the form fields that precede the file: 20 KB, names and values together.
pub const MAX_FIELDS_BYTES: usize = 20 * 1024;

/// Raw body bytes the parser may have been handed before it reaches the file part: the
/// fields' bound plus room for their part headers and boundaries. Past it, the parser is
/// handed nothing more, so what it buffers stays below this plus one chunk of the body,
/// however the bytes are spent (one endless header line, a long preamble, empty parts).
pub const MAX_PRE_DATA_BYTES: usize = MAX_FIELDS_BYTES + 8 * 1024;

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
    let gate = Arc::new(PreDataGate::default());
    let source = PreDataBound::new(OneChunkAtATime::new(body), Arc::clone(&gate));
    let mut multipart = Multipart::new(source, boundary);
    let mut fields = BTreeMap::new();
    let mut size = 0usize;
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(form_error)? else {
            return Err(s3_error!(InvalidArgument, "POST requires exactly one file upload per request."));
        };
        gate.progressed.store(true, Ordering::SeqCst);
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        size += name.len();
        if name == FILE_FIELD {
            gate.at_file.store(true, Ordering::SeqCst);
            let filename = field.file_name().map(str::to_owned);
            return Ok(Form { fields, filename, file: field });
        }
        let mut value = Vec::new();
        loop {
            let chunk = field.chunk().await.map_err(form_error)?;
            // A piece of the value, or its end: either way the parser used what it held.
            gate.progressed.store(true, Ordering::SeqCst);
            let Some(chunk) = chunk else { break };
            size += chunk.len();
            if size > MAX_FIELDS_BYTES {
                return Err(pre_data_too_large());
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| malformed())?;
        fields.entry(name).or_insert(value);
    }
}

fn pre_data_too_large() -> S3Error {
    s3_error!(MaxPostPreDataLengthExceededError, "Your POST request fields preceding the upload file were too large.")
}

fn malformed() -> S3Error {
    s3_error!(MalformedPOSTRequest, "The body of your POST request is not well-formed multipart/form-data.")
}

/// A body cut off by [`PreDataBound`] has too much before its file; one that failed to arrive
/// is the client's incomplete request; anything else is a form that does not parse.
pub fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(cause) if cause.is::<PreDataTooLarge>() => pre_data_too_large(),
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

/// The parser was handed more than [`MAX_PRE_DATA_BYTES`] before the file part.
#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_PRE_DATA_BYTES} bytes of the form precede its file part")]
struct PreDataTooLarge;

/// What [`read`] tells [`PreDataBound`] of the parser's progress.
#[derive(Debug, Default)]
struct PreDataGate {
    /// The file part is reached: the bound no longer applies.
    at_file: AtomicBool,
    /// The parser has produced a part or a piece of a value since the gate last looked.
    progressed: AtomicBool,
}

/// Counts the body bytes handed to the parser and, until the file part is reached, hands it
/// no more once they pass [`MAX_PRE_DATA_BYTES`]. The parser asks for more before it looks at
/// what it holds, so past the bound it is first answered "not yet" (pending, woken at once) and
/// parses its buffer; only when it asks again without having produced anything from that
/// buffer does the body fail. The chunk that carries the file part's header (perhaps with
/// file data) is thus read whole, and the parser holds at most the bound plus one chunk.
struct PreDataBound<S> {
    inner: S,
    handed: usize,
    held_back: bool,
    gate: Arc<PreDataGate>,
}

impl<S> PreDataBound<S> {
    fn new(inner: S, gate: Arc<PreDataGate>) -> Self {
        Self { inner, handed: 0, held_back: false, gate }
    }
}

impl<S> Stream for PreDataBound<S>
where
    S: Stream<Item = Result<Bytes, s3s::StdError>> + Unpin,
{
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.gate.at_file.load(Ordering::SeqCst) {
            return Pin::new(&mut self.inner).poll_next(cx);
        }
        if self.handed > MAX_PRE_DATA_BYTES {
            let progressed = self.gate.progressed.swap(false, Ordering::SeqCst);
            if progressed || !self.held_back {
                self.held_back = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return Poll::Ready(Some(Err(Box::new(PreDataTooLarge))));
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            self.handed = self.handed.saturating_add(chunk.len());
            self.gate.progressed.store(false, Ordering::SeqCst);
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

    /// `text` in chunks of 16 KiB, as a connection delivers a body.
    fn chunked(text: String) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            Bytes::from(text).chunks(16 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Body::from(s3s::dto::StreamingBlob::wrap(futures::stream::iter(chunks)))
    }

    #[tokio::test]
    async fn bytes_before_the_file_are_bounded_however_they_are_spent() {
        let code = |r: S3Result<Form>| r.err().map(|e| e.code().as_str().to_owned());
        let too_large = Some("MaxPostPreDataLengthExceededError");
        let mib = 1024 * 1024;
        let file = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nd\r\n--b--\r\n";
        // One part header line that never ends (a header the fields' count never sees).
        let header = format!(
            "--b\r\nContent-Disposition: form-data; name=\"k\"\r\nX-Pad: {}\r\n\r\nv\r\n{file}",
            "p".repeat(mib)
        );
        assert_eq!(code(read(chunked(header), "b").await).as_deref(), too_large, "1 MiB header line");
        // A preamble before the first boundary.
        let preamble = format!("{}\r\n{file}", "p".repeat(mib));
        assert_eq!(code(read(chunked(preamble), "b").await).as_deref(), too_large, "1 MiB preamble");
        // Parts without a name or a value, which add nothing to the fields.
        let empty = format!("{}{file}", "--b\r\nContent-Disposition: form-data\r\n\r\n\r\n".repeat(100_000));
        assert_eq!(code(read(chunked(empty), "b").await).as_deref(), too_large, "100,000 empty parts");
        // Fields just under the bound, and a file larger than it, are read.
        let value = "v".repeat(MAX_FIELDS_BYTES - 100);
        let data = "d".repeat(mib);
        let within = format!(
            "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{value}\r\n\
             --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n{data}\r\n--b--\r\n"
        );
        let mut form = read(chunked(within), "b").await.unwrap();
        let mut read_bytes = 0;
        while let Some(chunk) = form.file.next().await {
            read_bytes += chunk.unwrap().len();
        }
        assert_eq!(read_bytes, mib);
    }

    #[tokio::test]
    async fn a_single_chunk_holding_fields_and_file_is_read() {
        let parts = [("key", None, "k"), ("file", Some("f"), &*"d".repeat(MAX_PRE_DATA_BYTES * 4))];
        let form = read(body(&parts, "b"), "b").await;
        assert!(form.is_ok(), "the chunk that reaches the file is handed whole");
    }
}
