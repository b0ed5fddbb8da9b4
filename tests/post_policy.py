#!/usr/bin/env python3
"""The fields of a POST Object form, for tests/tests/post_object.rs.

  post_policy.py presign URL BUCKET KEY FIELDS_JSON CONDITIONS_JSON EXPIRES_IN
      boto3's generate_presigned_post, path-style against URL.
  post_policy.py sign POLICY_JSON
      signs a policy document as it is (any expiration text) the way SigV4 POST forms are
      signed, adding the x-amz-algorithm, x-amz-credential and x-amz-date conditions.

Credentials and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
(optional) and AWS_REGION. Prints {"url": URL or null, "fields": [[name, value], ...]}.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import sys


def presign(url, bucket, key, fields, conditions, expires_in):
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=os.environ["AWS_REGION"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    post = s3.generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
    )
    return {"url": post["url"], "fields": list(post["fields"].items())}


def sign(policy_json):
    policy = json.loads(policy_json)
    access_key = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    region = os.environ["AWS_REGION"]
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%d")
    credential = f"{access_key}/{date}/{region}/s3/aws4_request"
    fields = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": credential,
        "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    if isinstance(policy.get("conditions"), list):
        policy["conditions"] += [{name: value} for name, value in fields.items()]
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()

    def mac(key, text):
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = mac(("AWS4" + secret).encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = mac(key, part)
    fields["policy"] = encoded
    fields["x-amz-signature"] = hmac.new(key, encoded.encode(), hashlib.sha256).hexdigest()
    return {"url": None, "fields": list(fields.items())}


if __name__ == "__main__":
    if sys.argv[1] == "presign":
        url, bucket, key, fields, conditions, expires = sys.argv[2:8]
        out = presign(url, bucket, key, json.loads(fields), json.loads(conditions), int(expires))
    else:
        out = sign(sys.argv[2])
    print(json.dumps(out))
