// Runs the example tools under Node's WASI (preview 1) with a JavaScript
// clawbox.host_call that follows the server's ABI (spec §4.4, plus
// clawbox's "does not fit" error envelope), and checks their outputs.
//
// usage: node run_tools.mjs <dir with <name>.wasm and <name>.json> [filter]
// Exits non-zero if any check fails.
import { WASI } from 'node:wasi';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import zlib from 'node:zlib';

// Node 20 crashes (SIGSEGV) after a few hundred WASI instances unless
// their memories are collected promptly, so collect after every run.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const wasmDir = process.argv[2];
const filter = process.argv[3] || '';
if (!wasmDir) {
  console.error('usage: node run_tools.mjs <wasm dir> [filter]');
  process.exit(2);
}

const MAX_HOST_CALLS = 100;
const modules = new Map();
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'clawbox-tools-'));
let tmpSeq = 0;

function loadModule(name) {
  if (!modules.has(name)) {
    const bytes = fs.readFileSync(path.join(wasmDir, `${name}.wasm`));
    modules.set(name, new WebAssembly.Module(bytes));
  }
  return modules.get(name);
}

// Dispatches one decoded host_call request. `opts.http(params)` answers
// http_request with an envelope object, a raw string (sent as is) or a
// number (returned as the host_call result); without it every URL is
// denied, as with an empty allowlist.
function dispatch(req, opts, state) {
  let msg;
  try {
    msg = JSON.parse(req);
  } catch (e) {
    return { error: `invalid host_call request: ${e.message}` };
  }
  if (msg === null || typeof msg !== 'object' || typeof msg.method !== 'string') {
    return { error: 'invalid host_call request: missing field `method`' };
  }
  if (state.calls.length >= MAX_HOST_CALLS) {
    return { error: `host_call limit exceeded (max ${MAX_HOST_CALLS})` };
  }
  const params = msg.params === undefined ? null : msg.params;
  state.calls.push({ method: msg.method, params });
  if (msg.method === 'log') {
    const p = params && typeof params === 'object' ? params : {};
    state.logs.push({
      level: typeof p.level === 'string' ? p.level : 'info',
      message: typeof p.message === 'string' ? p.message : '',
    });
    return { ok: null };
  }
  if (msg.method === 'http_request') {
    if (!params || typeof params.url !== 'string') return { error: "missing 'url' parameter" };
    if (opts.http) return opts.http(params);
    return { error: `network access denied: ${params.url} is not in the allowlist` };
  }
  return { error: `unknown host call method: ${msg.method}` };
}

function makeHostCall(getMemory, opts, state) {
  return (reqPtr, reqLen, respPtr, respCap) => {
    const mem = new Uint8Array(getMemory().buffer);
    // As the server: both buffers are checked before anything is dispatched
    // (wasm passes i32 as signed numbers).
    if (reqPtr < 0 || reqLen < 0 || respPtr < 0 || respCap < 0) return -1;
    if (reqPtr + reqLen > mem.length || respPtr + respCap > mem.length) return -1;
    let req;
    try {
      req = new TextDecoder('utf-8', { fatal: true }).decode(mem.subarray(reqPtr, reqPtr + reqLen));
    } catch {
      return -1;
    }
    const answer = dispatch(req, opts, state);
    if (typeof answer === 'number') return answer;
    let bytes = new TextEncoder().encode(typeof answer === 'string' ? answer : JSON.stringify(answer));
    state.responseSizes.push(respCap);
    if (bytes.length > respCap) {
      bytes = new TextEncoder().encode(JSON.stringify({
        error: `response of ${bytes.length} bytes does not fit the buffer of ${respCap} bytes`,
      }));
      if (bytes.length > respCap) return -1;
    }
    new Uint8Array(getMemory().buffer).set(bytes, respPtr);
    return bytes.length;
  };
}

// Runs tool `name` with stdin = input (a string as is, anything else
// JSON-encoded). Returns {code, stdout, stderr, out (parsed stdout or
// undefined), logs, calls, responseSizes}.
function runTool(name, input, opts = {}) {
  const dir = path.join(tmpRoot, String(tmpSeq++));
  fs.mkdirSync(dir);
  const files = ['stdin', 'stdout', 'stderr'].map((f) => path.join(dir, f));
  fs.writeFileSync(files[0],
    typeof input === 'string' || Buffer.isBuffer(input) ? input : JSON.stringify(input));
  const fds = [fs.openSync(files[0], 'r'), fs.openSync(files[1], 'w'), fs.openSync(files[2], 'w')];
  const state = { logs: [], calls: [], responseSizes: [] };
  let code;
  try {
    const wasi = new WASI({
      version: 'preview1', args: [], env: {}, returnOnExit: true,
      stdin: fds[0], stdout: fds[1], stderr: fds[2],
    });
    let instance;
    const hostCall = makeHostCall(() => instance.exports.memory, opts, state);
    instance = new WebAssembly.Instance(loadModule(name), {
      wasi_snapshot_preview1: wasi.wasiImport,
      clawbox: { host_call: hostCall },
    });
    code = wasi.start(instance);
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
  const stdout = fs.readFileSync(files[1], 'utf8');
  const stderr = fs.readFileSync(files[2], 'utf8');
  let out;
  try {
    out = JSON.parse(stdout);
  } catch {
    out = undefined;
  }
  gc();
  return { code: code ?? 0, stdout, stderr, out, ...state };
}

// Runs a tool and insists on a clean exit and JSON output.
function run(name, input, opts) {
  const r = runTool(name, input, opts);
  assert.equal(r.code, 0, `${name} exited ${r.code}; stderr: ${r.stderr}`);
  assert.notEqual(r.out, undefined, `${name} stdout is not JSON: ${r.stdout.slice(0, 200)}`);
  return r;
}

function assertError(out, pattern) {
  assert.equal(typeof out.error, 'string', `expected an error, got ${JSON.stringify(out)}`);
  assert.match(out.error, pattern);
}

// ---- tests ----------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// Deterministic pseudo-random generator for the cross-checks.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const pick = (r, a) => a[Math.floor(r() * a.length)];
function randomText(r, n) {
  const alphabet = ['a', 'b', 'Z', ' ', '\n', '"', '\\', '\u0001', '\t', 'é', '€', '😀', '<', '&', '/'];
  let s = '';
  for (let i = 0; i < n; i++) s += pick(r, alphabet);
  return s;
}
function randomJson(r, depth) {
  const k = depth > 3 ? Math.floor(r() * 4) : Math.floor(r() * 7);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return pick(r, [0, -1, 42, 3.25, -0.5, 1e21, 123456789, 2.5e-7]);
    case 3: return randomText(r, Math.floor(r() * 12));
    case 4: return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1));
    default: {
      const o = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) o[randomText(r, 1 + Math.floor(r() * 5))] = randomJson(r, depth + 1);
      return o;
    }
  }
}

test('manifests', () => {
  const names = fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')).map((f) => f.slice(0, -5));
  assert.ok(names.length >= 8, `expected at least 8 tools, found ${names}`);
  for (const name of names) {
    const m = JSON.parse(fs.readFileSync(path.join(wasmDir, `${name}.json`), 'utf8'));
    assert.equal(m.tool.name, name);
    assert.equal(typeof m.tool.description, 'string');
    assert.match(m.tool.version, /^\d+\.\d+\.\d+$/);
    for (const k of ['network', 'credentials', 'resources']) assert.ok(k in m, `${name}: ${k}`);
    assert.equal(m.input_schema.type, 'object');
    assert.equal(typeof m.output_schema, 'object');
    if (m.network) assert.ok(Array.isArray(m.network.allowlist));
  }
});

test('echo', () => {
  const r = run('echo', { hello: 'world' });
  assert.equal(r.out.echo.hello, 'world');
  assert.equal(r.out.tool, 'echo');
  assert.equal(r.out.version, '0.1.0');
});

test('echo keeps values exactly', () => {
  const text = '{"big":12345678901234567890,"f":1.5e300,"neg":-0.0,"s":"\\u00e9\\u0000\\ud83d\\ude00 \\"q\\"","a":[true,false,null,{}],"o":{"":[]}}';
  const r = run('echo', text);
  assert.ok(r.stdout.includes('"big":12345678901234567890'), r.stdout);
  assert.ok(r.stdout.includes('"f":1.5e300'), r.stdout);
  assert.ok(r.stdout.includes('"neg":-0.0'), r.stdout);
  assert.deepEqual(r.out.echo, JSON.parse(text));
  const r2 = run('echo', '');
  assert.equal(r2.out.echo, null);
  const r3 = run('echo', ' [1 , 2]\n');
  assert.deepEqual(r3.out.echo, [1, 2]);
});

test('echo cross-check random values', () => {
  const r = rng(7);
  for (let i = 0; i < 30; i++) {
    const v = randomJson(r, 0);
    const res = run('echo', { v });
    assert.deepEqual(res.out.echo, { v });
  }
});

test('SDK parser rejects bad input with positions', () => {
  const cases = [
    ['{"a":1,}', /line 1, column 8|expected a string key/],
    ['[1,2', /expected ',' or '\]', got end of input/],
    ['"\\x"', /invalid escape/],
    ['"\\ud800"', /lone high surrogate/],
    ['"\\udc00"', /lone low surrogate/],
    ['01', /unexpected '1' after the JSON value/],
    ['1.', /digits expected after '.'/],
    ['-', /invalid number/],
    ['tru', /expected a JSON value/],
    ['"a\tb"', /control character/],
    ['{"a" 1}', /expected ':'/],
    ['[1] x', /unexpected 'x'/],
  ];
  for (const [input, re] of cases) {
    const r = run('echo', input);
    assertError(r.out, re);
    assert.match(r.out.error, /^invalid input: /);
  }
  // Invalid UTF-8 on stdin.
  assertError(run('echo', Buffer.from([0x22, 0xff, 0x22])).out, /invalid UTF-8 in string/);
  assertError(run('echo', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])).out, /invalid UTF-8/);
  // Nesting beyond the depth limit fails cleanly; at the limit it works.
  assertError(run('echo', '['.repeat(200) + ']'.repeat(200)).out, /nesting too deep \(max 128\)/);
  assert.ok(run('echo', '['.repeat(127) + ']'.repeat(127)).out.echo);
});

test('hash test vectors', () => {
  const h = (input, algorithm) => run('hash', { input, algorithm }).out;
  assert.equal(h('', 'sha256').hash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(h('abc', 'sha256').hash, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(h('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', 'sha256').hash,
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.equal(h('a'.repeat(1000000), 'sha256').hash,
    'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  assert.equal(h('123456789', 'crc32').hash, 'cbf43926');
  assert.equal(h('', 'crc32').hash, '00000000');
  assert.equal(h('The quick brown fox jumps over the lazy dog', 'crc32').hash, '414fa339');
  assert.equal(h('', 'fnv1a').hash, '811c9dc5');
  assert.equal(h('a', 'fnv1a').hash, 'e40c292c');
  assert.equal(h('foobar', 'fnv1a').hash, 'bf9cf968');
  assert.equal(h('', 'djb2').hash, '00001505');
  assert.equal(h('a', 'djb2').hash, '0002b606');
  assert.equal(h('abc', 'djb2').hash, '0b885c8b');
  const def = run('hash', { input: 'abc' }).out;
  assert.equal(def.algorithm, 'sha256');
  assert.equal(def.input_length, 3);
});

test('hash cross-check with node', () => {
  const fnv = (b) => b.reduce((h, c) => Math.imul(h ^ c, 0x01000193) >>> 0, 0x811c9dc5);
  const djb = (b) => b.reduce((h, c) => (Math.imul(h, 33) + c) >>> 0, 5381);
  const hex = (n) => n.toString(16).padStart(8, '0');
  const r = rng(11);
  for (let i = 0; i < 20; i++) {
    const s = randomText(r, Math.floor(r() * 200));
    const b = Buffer.from(s, 'utf8');
    const out = run('hash', { input: s, algorithm: 'all' }).out;
    assert.equal(out.hashes.sha256, crypto.createHash('sha256').update(b).digest('hex'));
    assert.equal(out.hashes.fnv1a, hex(fnv(b)));
    assert.equal(out.hashes.djb2, hex(djb(b)));
    if (zlib.crc32) assert.equal(out.hashes.crc32, hex(zlib.crc32(b)));
    assert.equal(out.input_length, b.length);
  }
});

test('hash errors', () => {
  assertError(run('hash', { input: 'x', algorithm: 'md5' }).out, /unknown algorithm 'md5'/);
  assertError(run('hash', { algorithm: 'sha256' }).out, /'input' must be a string/);
  assertError(run('hash', { input: 1 }).out, /'input' must be a string/);
  assertError(run('hash', [1]).out, /params must be an object/);
  assertError(run('hash', { input: 'x', algorithm: 5 }).out, /'algorithm' must be a string/);
});

test('base64 encode/decode round trips', () => {
  assert.equal(run('base64', { operation: 'encode', input: 'hello' }).out.output, 'aGVsbG8=');
  assert.equal(run('base64', { operation: 'decode', input: 'aGVsbG8=' }).out.output, 'hello');
  assert.equal(run('base64', { operation: 'encode', input: '' }).out.output, '');
  assert.equal(run('base64', { operation: 'decode', input: '' }).out.output, '');
  const r = rng(3);
  for (let i = 0; i < 20; i++) {
    const s = randomText(r, Math.floor(r() * 40));
    const b = Buffer.from(s, 'utf8');
    for (const urlSafe of [false, true]) {
      const enc = run('base64', { operation: 'encode', input: s, url_safe: urlSafe }).out;
      assert.equal(enc.output, b.toString(urlSafe ? 'base64url' : 'base64'));
      const dec = run('base64', { operation: 'decode', input: enc.output, url_safe: urlSafe }).out;
      assert.equal(dec.output, s);
      assert.equal(dec.utf8, true);
      assert.equal(dec.length, b.length);
    }
  }
  // url_safe decoding also takes padded input.
  assert.equal(run('base64', { operation: 'decode', input: 'aGVsbG8=', url_safe: true }).out.output, 'hello');
  // Bytes that are not UTF-8 come back as hex.
  const bin = run('base64', { operation: 'decode', input: '/+8A' }).out;
  assert.equal(bin.utf8, false);
  assert.equal(bin.output, null);
  assert.equal(bin.output_hex, 'ffef00');
});

test('base64 strict decoding errors', () => {
  const dec = (input, url_safe = false) => run('base64', { operation: 'decode', input, url_safe }).out;
  assertError(dec('aGVsbG8'), /invalid length 7: standard base64 needs padding/);
  assertError(dec('aGV$bG8='), /invalid character '\$' at position 3/);
  assertError(dec('aGVs bG8'), /invalid character byte 0x20 at position 4/);
  assertError(dec('aGVsbG9='), /non-canonical input/);
  assertError(dec('QR=='), /non-canonical input/);
  assertError(dec('a==='), /invalid padding/);
  assertError(dec('QQ=A'), /invalid character '=' at position 2 \(padding is only allowed at the end\)/);
  assertError(dec('QQ==QQ=='), /padding is only allowed at the end/);
  assertError(dec('QUJD='), /padded input must be a multiple of 4/);
  assertError(dec('a-_b'), /set url_safe/);
  assertError(dec('a+/b', true), /unset url_safe/);
  assertError(dec('aGVsb', true), /5 data characters cannot encode whole bytes/);
  assertError(run('base64', { operation: 'rot13', input: 'x' }).out, /'operation' must be/);
  assertError(run('base64', { operation: 'encode' }).out, /'input' must be a string/);
  assertError(run('base64', { operation: 'encode', input: 'x', url_safe: 'yes' }).out, /'url_safe' must be a boolean/);
});

test('json_fmt validate', () => {
  const v = (input) => run('json_fmt', { operation: 'validate', input }).out;
  assert.deepEqual(v('{"a":1}'), { valid: true, type: 'object' });
  assert.deepEqual(v(' 3 '), { valid: true, type: 'number' });
  const bad = v('{"a":}');
  assert.equal(bad.valid, false);
  assert.equal(bad.line, 1);
  assert.equal(bad.column, 6);
  assert.equal(bad.offset, 5);
  assert.match(bad.error, /expected a JSON value, got '\}'/);
  const multi = v('{\n  "a": 1,\n}');
  assert.equal(multi.line, 3);
  assert.equal(multi.column, 1);
  assert.match(multi.error, /expected a string key/);
  const utf = v('["é", x]');
  assert.equal(utf.column, 7, 'columns count characters');
  assert.equal(v('').error, 'unexpected end of input');
});

test('json_fmt format/minify/keys/extract', () => {
  const doc = { b: [1, 2, { c: 'x' }], a: { 'weird.key': true, '': null }, e: [] , o: {} };
  const text = JSON.stringify(doc);
  const f = (extra) => run('json_fmt', { input: text, ...extra }).out;
  assert.equal(f({ operation: 'format' }).output, JSON.stringify(doc, null, 2));
  assert.equal(f({ operation: 'format', indent: 4 }).output, JSON.stringify(doc, null, 4));
  assert.equal(f({ operation: 'format', indent: 0 }).output, text);
  assert.equal(run('json_fmt', { operation: 'minify', input: JSON.stringify(doc, null, 3) }).out.output, text);
  assert.deepEqual(f({ operation: 'keys' }), { keys: ['b', 'a', 'e', 'o'], count: 4 });
  assert.deepEqual(f({ operation: 'extract', path: 'b[2].c' }).value, 'x');
  assert.deepEqual(f({ operation: 'extract', path: '$.b[1]' }).value, 2);
  assert.deepEqual(f({ operation: 'extract', path: 'a["weird.key"]' }).value, true);
  assert.deepEqual(f({ operation: 'extract', path: 'b' }).value, [1, 2, { c: 'x' }]);
  assert.deepEqual(f({ operation: 'extract', path: '' }).value, doc);
  assert.equal(f({ operation: 'extract', path: 'a' }).type, 'object');
  assertError(f({ operation: 'extract', path: 'b[9]' }), /index 9 at position 1 is out of range \(length 3\)/);
  assertError(f({ operation: 'extract', path: 'zz' }), /path not found: no key "zz"/);
  assertError(f({ operation: 'extract', path: 'b.c' }), /not an object/);
  assertError(f({ operation: 'extract', path: 'a[0]' }), /applies to object/);
  assertError(f({ operation: 'extract', path: 'b[x]' }), /invalid path at position 1/);
  assertError(f({ operation: 'extract', path: 'a..b' }), /empty key/);
  assertError(f({ operation: 'extract' }), /needs 'path'/);
  assertError(run('json_fmt', { operation: 'keys', input: '[1]' }).out, /keys needs a JSON object, got array/);
  assertError(run('json_fmt', { operation: 'format', input: '{"a":1' }).out,
    /^invalid JSON at line 1, column 7 \(offset 6\): expected ',' or '\}', got end of input$/);
  assertError(run('json_fmt', { operation: 'shuffle', input: '1' }).out, /'operation' must be one of/);
  assertError(run('json_fmt', { operation: 'format', input: '1', indent: 99 }).out, /'indent'/);
  assertError(run('json_fmt', { operation: 'format' }).out, /'input' must be a string/);
  // Big numbers survive formatting byte for byte.
  assert.equal(run('json_fmt', { operation: 'minify', input: '[ 1.0e+2 , 12345678901234567890123 ]' }).out.output,
    '[1.0e+2,12345678901234567890123]');
});

test('json_fmt cross-check with JSON.stringify', () => {
  const r = rng(5);
  for (let i = 0; i < 25; i++) {
    const v = randomJson(r, 0);
    const text = JSON.stringify(v);
    assert.equal(run('json_fmt', { operation: 'minify', input: text }).out.output, text);
    const indent = 1 + (i % 4);
    assert.equal(run('json_fmt', { operation: 'format', input: text, indent }).out.output,
      JSON.stringify(v, null, indent));
  }
});

test('http_request denied passes the error through', () => {
  const r = run('http_request', { url: 'https://example.com/' });
  assertError(r.out, /^network access denied: https:\/\/example\.com\//);
  assert.deepEqual(r.logs, [{ level: 'info', message: 'HTTP GET https://example.com/' }]);
  assert.equal(r.calls.at(-1).method, 'http_request');
  assert.deepEqual(r.calls.at(-1).params, { url: 'https://example.com/', method: 'GET' });
});

test('http_request success and parameter passing', () => {
  const canned = { status: 201, headers: { 'content-type': 'application/json' }, body: '{"id":7}' };
  const r = run('http_request', {
    url: 'https://api.example.com/items', method: 'POST',
    headers: { Authorization: 'x', 'X-A': 'b' }, body: 'payload\u0000é',
  }, { http: () => ({ ok: canned }) });
  assert.deepEqual(r.out, canned);
  assert.deepEqual(r.calls.at(-1).params, {
    url: 'https://api.example.com/items', method: 'POST',
    headers: { Authorization: 'x', 'X-A': 'b' }, body: 'payload\u0000é',
  });
  assert.equal(r.logs[0].message, 'HTTP POST https://api.example.com/items');
  assertError(run('http_request', {}).out, /invalid input: 'url' \(string\) is required/);
  assertError(run('http_request', { url: 'x', headers: { a: 1 } }).out, /'headers' values must be strings/);
  assertError(run('http_request', { url: 'x', headers: [] }).out, /'headers' must be an object/);
  assertError(run('http_request', { url: 'x', method: 3 }).out, /'method' must be a string/);
  assertError(run('http_request', { url: 'x', body: {} }).out, /'body' must be a string/);
});

test('SDK retries once when the response does not fit', () => {
  const body = 'x'.repeat(1536 * 1024);
  const r = run('http_request', { url: 'https://big.example/' },
    { http: () => ({ ok: { status: 200, headers: {}, body } }) });
  assert.equal(r.out.body.length, body.length);
  const httpCalls = r.calls.filter((c) => c.method === 'http_request');
  assert.equal(httpCalls.length, 2, 'one retry');
  assert.equal(r.responseSizes.at(-2), 64 * 1024);
  assert.ok(r.responseSizes.at(-1) >= body.length);
  // A response that keeps growing is reported, not retried forever.
  let n = 0;
  const grow = run('http_request', { url: 'https://grow.example/' },
    { http: () => ({ ok: { status: 200, headers: {}, body: 'y'.repeat(1100000 + 100000 * n++) } }) });
  assertError(grow.out, /^response of \d+ bytes does not fit the buffer of \d+ bytes$/);
  assert.equal(n, 2);
});

test('SDK copes with hostile host responses', () => {
  const cases = [
    ['{"ok":', /host_call returned invalid JSON/],
    ['[1,2]', /malformed envelope/],
    ['{"neither":1}', /malformed envelope/],
    ['{"error":5}', /malformed envelope/],
    ['{"ok":{"status":"200"}}', /malformed http_request response/],
    ['{"ok":{"status":99999}}', /malformed http_request response/],
    ['{"ok":[]}', /malformed http_request response/],
    ['{"error":"response of 99999999999 bytes does not fit the buffer of 1 bytes"}', /does not fit/],
    [-1, /host_call rejected the request/],
    [5000000, /invalid length/],
  ];
  for (const [answer, re] of cases) {
    const r = run('http_request', { url: 'https://h.example/' }, { http: () => answer });
    assertError(r.out, re);
  }
  // A body that is missing or of the wrong type reads as empty.
  const r = run('web_fetch', { url: 'https://h.example/' }, { http: () => ({ ok: { status: 204 } }) });
  assert.equal(r.out.content, '');
});

const PAGE = `<!DOCTYPE html>
<html><head><title>Test &amp; Page</title>
<style>body { color: red }</style>
<script type="text/javascript">var x = "<p>not text</p>"; if (a < b) {}</script>
</head>
<body><h1>Hello</h1>
<p>First   paragraph
  with <b>bold</b> and&nbsp;space.</p><!-- a <p>comment</p> -->
<p>5 &lt; 6 &gt; 4 &quot;q&quot; &#39;s&#39; &#x263A; &#9731; &copy; &unknown; AT&T &#0; &#xD800;</p>
<ul><li>one</li><li>two <a href="/x?a=1&b=2" title='x > y'>link</a></li></ul>
<table><tr><td>c1</td><td>c2</td></tr></table>
<SCRIPT>ignored()</SCRIPT><noscript>also ignored</noscript>tail 1 < 2
</body></html>`;

test('web_fetch converts HTML to text', () => {
  const http = () => ({ ok: { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: PAGE } });
  const r = run('web_fetch', { url: 'https://example.com/page' }, { http });
  assert.equal(r.out.url, 'https://example.com/page');
  assert.equal(r.out.status, 200);
  assert.equal(r.out.content_type, 'text/html; charset=utf-8');
  assert.equal(r.out.truncated, false);
  assert.equal(r.out.content, [
    'Test & Page',
    'Hello',
    'First paragraph with bold and space.',
    '5 < 6 > 4 "q" \'s\' ☺ ☃ © &unknown; AT&T \ufffd \ufffd',
    'one',
    'two link',
    'c1 c2',
    'tail 1 < 2',
  ].join('\n'));
  assert.equal(r.out.length, Buffer.byteLength(r.out.content));
  assert.deepEqual(r.calls.at(-1).params, { url: 'https://example.com/page', method: 'GET' });
});

test('web_fetch truncates on a character boundary', () => {
  const text = 'ab€€€'; // 2 + 3*3 bytes
  const http = () => ({ ok: { status: 200, headers: { 'content-type': 'text/plain' }, body: text } });
  const out = (max_length) => run('web_fetch', { url: 'https://e.x/', max_length }, { http }).out;
  assert.deepEqual([out(4).content, out(4).truncated, out(4).length], ['ab', true, 2]);
  assert.equal(out(5).content, 'ab€');
  assert.equal(out(11).content, text);
  assert.equal(out(11).truncated, false);
  assert.equal(out(1000).content, text);
  const big = run('web_fetch', { url: 'https://e.x/' },
    { http: () => ({ ok: { status: 200, headers: {}, body: '<p>' + 'word '.repeat(5000) + '</p>' } }) }).out;
  assert.equal(big.content.length, 10000);
  assert.equal(big.truncated, true);
  assert.equal(big.content_type, null);
  assertError(out(0), /'max_length' must be an integer from 1 to 1000000/);
  assertError(out(1.5), /'max_length'/);
  assertError(run('web_fetch', {}).out, /'url' \(string\) is required/);
});

test('web_fetch denied passes the error through', () => {
  const r = run('web_fetch', { url: 'https://denied.example/' });
  assertError(r.out, /^network access denied: https:\/\/denied\.example\//);
});

test('wat_echo', () => {
  const r = run('wat_echo', { a: 1, s: 'é' });
  assert.deepEqual(r.out, { tool: 'wat_echo', echo: { a: 1, s: 'é' } });
  assert.deepEqual(r.logs, [{ level: 'info', message: 'wat_echo: hello from WebAssembly text' }]);
  assert.deepEqual(run('wat_echo', '').out, { tool: 'wat_echo', echo: null });
  const big = { data: 'z'.repeat(300000) };
  assert.deepEqual(run('wat_echo', big).out.echo, big);
});

test('cpp_wordcount', () => {
  const r = run('cpp_wordcount', { text: 'Hello world,\nhello again. Wörld!\n\nhello' });
  assert.equal(r.out.tool, 'cpp_wordcount');
  assert.equal(r.out.lines, 4);
  assert.equal(r.out.words, 6);
  assert.equal(r.out.bytes, Buffer.byteLength('Hello world,\nhello again. Wörld!\n\nhello'));
  assert.equal(r.out.chars, 'Hello world,\nhello again. Wörld!\n\nhello'.length);
  assert.deepEqual(r.out.top_words[0], { word: 'hello', count: 3 });
  assert.equal(r.out.unique_words, 4);
  assert.deepEqual(run('cpp_wordcount', { text: '' }).out,
    { tool: 'cpp_wordcount', lines: 0, words: 0, chars: 0, bytes: 0, unique_words: 0, top_words: [] });
  assert.equal(run('cpp_wordcount', { text: 'a b c', top: 2 }).out.top_words.length, 2);
  assertError(run('cpp_wordcount', { text: 5 }).out, /'text' must be a string/);
  assertError(run('cpp_wordcount', { text: 'x', top: -1 }).out, /'top'/);
});

// ---- runner -----------------------------------------------------------------

let failed = 0;
let ran = 0;
for (const t of tests) {
  if (filter && !t.name.includes(filter)) continue;
  ran++;
  try {
    t.fn();
    console.log(`ok ${ran} - ${t.name}`);
  } catch (e) {
    failed++;
    console.log(`not ok ${ran} - ${t.name}`);
    console.log(String(e && e.stack ? e.stack : e).split('\n').map((l) => `  # ${l}`).join('\n'));
  }
}
fs.rmSync(tmpRoot, { recursive: true, force: true });
console.log(`1..${ran}`);
console.log(failed ? `# ${failed} of ${ran} failed` : `# all ${ran} passed`);
process.exit(failed ? 1 : 0);
