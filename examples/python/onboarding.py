#!/usr/bin/env python3
"""Onboarding an application with boto3: a Keycloak access token (client credentials grant) is
exchanged at the gateway's STS for temporary credentials, which an S3 client then uses.

Settings come from the environment; see examples/README.md."""

import json
import os
import sys
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config


def keycloak_token(token_url: str, client_id: str, client_secret: str) -> str:
    """An access token for the client, from Keycloak's token endpoint."""
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    ).encode()
    with urllib.request.urlopen(urllib.request.Request(token_url, data=form), timeout=10) as reply:
        return json.load(reply)["access_token"]


def main() -> int:
    endpoint = os.environ.get("SOVEREIGN_S3_ENDPOINT", "http://127.0.0.1:9000")
    region = os.environ.get("AWS_REGION", "us-east-1")
    role_arn = os.environ.get("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/app")
    bucket = os.environ.get("BUCKET", "app")
    token = keycloak_token(
        os.environ["KEYCLOAK_TOKEN_URL"], os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]
    )

    # AssumeRoleWithWebIdentity is not signed: the token is the proof. No credentials needed.
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region)
    session = sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="onboarding-example", WebIdentityToken=token, DurationSeconds=900
    )
    creds = session["Credentials"]

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    body = b"hello from boto3\n"
    put = s3.put_object(Bucket=bucket, Key="onboarding/hello.txt", Body=body)
    got = s3.get_object(Bucket=bucket, Key="onboarding/hello.txt")["Body"].read()
    if got != body:
        print(f"read back {got!r}, wrote {body!r}", file=sys.stderr)
        return 1
    print(f"assumed {session['AssumedRoleUser']['Arn']} until {creds['Expiration'].isoformat()}")
    print(f"wrote and read s3://{bucket}/onboarding/hello.txt, ETag {put['ETag']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
