// An independent implementation of the reference credential-store format
// used by test_secrets.c to check that we read what the reference
// writes and that it could read what we write:
//
//   nonce[12] || AES-256-GCM(key, nonce, JSON) || tag[16], no AAD
//
// where JSON is the compact array serde_json writes; JSON.stringify escapes
// strings the same way for these inputs.
//
//   node refstore.js write PATH HEXKEY ENTRIES_JSON   writes a store
//   node refstore.js read  PATH HEXKEY                prints the plaintext
'use strict';
const crypto = require('crypto');
const fs = require('fs');

function main(argv) {
  const [cmd, path, hexkey, entries] = argv;
  const key = Buffer.from(hexkey, 'hex');
  if (key.length !== 32) throw new Error('key must be 64 hex chars');
  if (cmd === 'write') {
    // Re-serialise through JSON so the bytes are the canonical compact form.
    // The optional members (allow_http, port) follow, only when given.
    const fields = ['name', 'value', 'domain', 'header_name', 'header_prefix'];
    const optional = ['allow_http', 'port'];
    const list = JSON.parse(entries).map((e) => Object.fromEntries(
        fields.map((f) => [f, e[f]]).concat(optional.filter((f) => f in e).map((f) => [f, e[f]]))));
    const pt = Buffer.from(JSON.stringify(list), 'utf8');
    const nonce = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    fs.writeFileSync(path, Buffer.concat([nonce, ct, c.getAuthTag()]), { mode: 0o600 });
    return 0;
  }
  if (cmd === 'read') {
    const data = fs.readFileSync(path);
    if (data.length < 12 + 16) throw new Error('credential file too short');
    const d = crypto.createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
    d.setAuthTag(data.subarray(data.length - 16));
    const pt = Buffer.concat([d.update(data.subarray(12, data.length - 16)), d.final()]);
    const text = pt.toString('utf8');
    // Our writer must produce exactly serde's compact form: re-serialising
    // the parsed value gives the same bytes.
    if (JSON.stringify(JSON.parse(text)) !== text) throw new Error('not canonical compact JSON');
    process.stdout.write(text);
    return 0;
  }
  throw new Error('usage: refstore.js write|read PATH HEXKEY [ENTRIES_JSON]');
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`refstore: ${e.message}\n`);
  process.exitCode = 1;
}
