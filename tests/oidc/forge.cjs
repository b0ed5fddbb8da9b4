// Key and token tool for the STS tests, on the `jose` package oidc-provider depends on.
//   node forge.cjs keygen FILE           writes a private RS256 JWKS with a random kid
//   node forge.cjs sign FILE CLAIMS [KID] prints an RS256 JWT of CLAIMS (JSON) signed with FILE's
//                                        key, its header naming KID (default: the key's own kid)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const jose = require(path.join(process.env.OIDC_NODE_MODULES, 'jose'));
const [command, file, claims, kid] = process.argv.slice(2);

async function main() {
  if (command === 'keygen') {
    const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await jose.exportJWK(privateKey)), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
    fs.writeFileSync(file, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  } else if (command === 'sign') {
    const jwk = JSON.parse(fs.readFileSync(file, 'utf8')).keys[0];
    const key = await jose.importJWK(jwk, 'RS256');
    const header = { alg: 'RS256', typ: 'JWT', kid: kid || jwk.kid };
    process.stdout.write(await new jose.CompactSign(Buffer.from(claims)).setProtectedHeader(header).sign(key));
  } else {
    throw new Error(`unknown command ${command}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
