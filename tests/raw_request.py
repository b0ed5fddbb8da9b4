"""Sends one SigV4-signed HTTP/1.1 request over a raw socket, as no SDK would: a declared
Content-Length other than the body sent (then a half-close), or a request timed by `Date`
instead of `x-amz-date`. Prints the reply's status line, then its body. Used by
tests/tests/conformance.rs.

usage: raw_request.py METHOD URL DECLARED_LENGTH SENT_BYTES [Header:value ...]
  DECLARED_LENGTH "-" sends no Content-Length.
credentials and region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
RAW_TIME (optional): "x-amz-date" (default), "date" (time in a signed Date header only),
"date+x-amz-date" (both; Date unsigned and garbage), "unsigned-date" (a valid Date that is not
signed, no x-amz-date) or "none" (neither header). RAW_SKEW_SECONDS shifts the time.
"""

import datetime
import hashlib
import hmac
import os
import socket
import sys
from urllib.parse import parse_qsl, quote, urlsplit


def sign(method, parts, headers, time):
    """Adds the SigV4 Authorization header, signing every header given."""
    region, key_id, secret = os.environ["AWS_REGION"], os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    day, stamp = time.strftime("%Y%m%d"), time.strftime("%Y%m%dT%H%M%SZ")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    names = sorted(name.lower() for name in headers)
    canonical_headers = "".join(f"{name}:{headers_lower(headers)[name].strip()}\n" for name in names)
    signed = ";".join(names)
    canonical = "\n".join([method, quote(parts.path, safe="/-_.~"), query, canonical_headers, signed, "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"


def headers_lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def main():
    method, url, declared, sent = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    extra = dict(h.split(":", 1) for h in sys.argv[5:])
    parts = urlsplit(url)
    skew = datetime.timedelta(seconds=int(os.environ.get("RAW_SKEW_SECONDS", "0")))
    time = datetime.datetime.now(datetime.timezone.utc) + skew
    mode = os.environ.get("RAW_TIME", "x-amz-date")
    headers = {"Host": parts.netloc, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", **extra}
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT")
    if mode == "date":
        headers["Date"] = http_date
    elif mode not in ("none", "unsigned-date"):
        headers["X-Amz-Date"] = time.strftime("%Y%m%dT%H%M%SZ")
    headers["Authorization"] = sign(method, parts, headers, time)
    if mode == "date+x-amz-date":
        headers["Date"] = "not a date"
    if mode == "unsigned-date":
        headers["Date"] = http_date
    target = parts.path + ("?" + parts.query if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if declared != "-":
        lines.append(f"Content-Length: {declared}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        if sent:
            try:
                sock.sendall(b"<" * sent)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may answer and close before reading the body
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    print(status_line.decode(errors="replace"))
    print(body.decode(errors="replace"))


main()
