//! CORS seen from a real browser: headless Chromium loads a page from another origin on
//! 127.0.0.1 whose script fetches a presigned object URL with a custom header, so the browser
//! sends its own preflight and applies the answer (allowed origin, allowed header, exposed
//! ETag). A page from an origin that no rule allows must be blocked by the browser itself.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use sovereign_e2e::*;

/// Serves `page` to every request on a fresh 127.0.0.1 port, from a thread, until the process
/// ends: a second origin for the browser.
fn serve_page(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
    let port = listener.local_addr().expect("page server address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// The page: fetches `url` with the non-safelisted header `X-Probe` (which makes the browser
/// send a preflight) and writes what it got, or the browser's refusal, into `#out`.
fn page_fetching(url: &str) -> String {
    format!(
        r#"<html><body><pre id="out">pending</pre><script>
fetch({url:?}, {{headers: {{'X-Probe': '1'}}}})
  .then(async r => {{ document.getElementById('out').textContent =
      'status=' + r.status + ' etag=' + r.headers.get('ETag') + ' body=' + await r.text(); }})
  .catch(e => {{ document.getElementById('out').textContent = 'blocked: ' + e; }});
</script></body></html>"#
    )
}

/// What the page at `port` wrote into `#out` once its fetch settled, as Chromium rendered it.
fn browser_result(port: u16) -> String {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .expect("run chromium (installed by scripts/test.sh)");
    let dom = String::from_utf8_lossy(&output.stdout);
    let start = dom.find(r#"<pre id="out">"#).map(|i| i + r#"<pre id="out">"#.len());
    let text = start.and_then(|s| dom[s..].find("</pre>").map(|e| dom[s..s + e].to_owned()));
    text.unwrap_or_else(|| panic!("no result in the page: {dom}\n{}", String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_reads_the_object_and_others_are_blocked() {
    // The server stops when `_server` is dropped, at the end of the test.
    let (_server, s3) = server_with_bucket(4).await;
    let put = put_bytes(&s3, BUCKET, "page.txt", b"hello from sovereign-s3").await;
    let presigned = s3
        .get_object()
        .bucket(BUCKET)
        .key("page.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).expect("presigning config"))
        .await
        .expect("presign");
    let url = presigned.uri().to_owned();
    let allowed = serve_page(page_fetching(&url));
    let refused = serve_page(page_fetching(&url));

    // No CORS configuration: the preflight is refused and the browser blocks the fetch.
    assert!(browser_result(allowed).starts_with("blocked"), "fetched without a CORS configuration");

    let rule = CorsRule::builder()
        .allowed_origins(format!("http://127.0.0.1:{allowed}"))
        .allowed_methods("GET")
        .allowed_headers("x-probe")
        .expose_headers("ETag")
        .build()
        .expect("cors rule");
    let rules = CorsConfiguration::builder().cors_rules(rule).build().expect("cors configuration");
    s3.put_bucket_cors().bucket(BUCKET).cors_configuration(rules).send().await.expect("put bucket cors");

    let etag = put.e_tag().expect("etag of the put");
    assert_eq!(browser_result(allowed), format!("status=200 etag={etag} body=hello from sovereign-s3"));
    assert!(browser_result(refused).starts_with("blocked"), "an origin no rule allows read the object");
}
