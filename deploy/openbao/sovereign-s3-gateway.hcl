# Least-privilege OpenBao policy of the sovereign-s3 gateway (SSE-S3 and SSE-KMS).
#
# The gateway only asks transit for new data keys and unseals or rewraps the data keys it
# stored. It cannot read, export, create, rotate or delete keys, and it only reaches transit
# keys whose names start with "sovereign-s3" (the default key and per-bucket keys such as
# "sovereign-s3-payroll"). Mount path: transit/ (change it with --openbao-transit-mount).

path "transit/datakey/plaintext/sovereign-s3*" {
  capabilities = ["update"]
}

path "transit/decrypt/sovereign-s3*" {
  capabilities = ["update"]
}

# Used by `sovereign-s3 rewrap` after a key rotation.
path "transit/rewrap/sovereign-s3*" {
  capabilities = ["update"]
}

# Token upkeep: look up its own TTL and renew itself before it expires.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
