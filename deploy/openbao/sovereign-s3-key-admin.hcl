# OpenBao policy of the operator who manages sovereign-s3's transit keys (not the gateway):
# create keys, rotate them, raise min_decryption_version, allow and perform deletion
# (crypto-shredding a bucket's key). Keep it off the gateway's token.

path "transit/keys/sovereign-s3*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "transit/keys/sovereign-s3*/rotate" {
  capabilities = ["update"]
}

path "transit/keys/sovereign-s3*/config" {
  capabilities = ["update"]
}
