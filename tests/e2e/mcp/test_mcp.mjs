// `clawbox mcp` driven by the official MCP TypeScript SDK client over stdio
// (an initialize-based client), and by raw JSON-RPC lines in the stateless
// 2026-07-28 style, against a real `clawbox serve` with the example tools
// (and the hostile busy module as a slow tool). Run by run.sh, which
// installs the SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const BIN = path.resolve(process.env.CLAWBOX_BIN ?? '../../../build/src/cli/clawbox-test');
const TOOLS = process.env.CLAWBOX_E2E_TOOLS ?? '../../../build/tools/wasm';
const HOSTILE = process.env.CLAWBOX_E2E_HOSTILE ?? '../../../build/tests/fixtures';
const CACHE = process.env.CLAWBOX_E2E_CACHE ?? '/tmp/clawbox-e2e-cache';
const EXAMPLES = ['echo', 'hash', 'base64', 'json_fmt', 'http_request', 'web_fetch'];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One `clawbox serve` with the example tools, and `busy` as a tool that
// runs until its 2 s deadline (the fuel budget is too large to run out).
class Server {
  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawbox-e2e-mcp-'));
    this.port = await freePort();
    this.token = crypto.randomBytes(32).toString('hex');
    this.socket = path.join(this.dir, 'api.sock');
    const tools = path.join(this.dir, 'tools');
    fs.mkdirSync(tools);
    for (const f of fs.readdirSync(TOOLS))
      if (f.endsWith('.wasm') || f.endsWith('.json')) fs.copyFileSync(path.join(TOOLS, f), path.join(tools, f));
    fs.copyFileSync(path.join(HOSTILE, 'busy.wasm'), path.join(tools, 'busy.wasm'));
    fs.writeFileSync(path.join(tools, 'busy.json'), JSON.stringify({
      tool: { name: 'busy', description: 'Loops until its deadline.', version: '0.1.0' },
      network: null, credentials: null,
      resources: { default_timeout_ms: 2000 },
    }));
    const config = path.join(this.dir, 'clawbox.toml');
    fs.writeFileSync(config,
      `[server]\nhost = "127.0.0.1"\nport = ${this.port}\nauth_token = "${this.token}"\n` +
      `data_dir = "${this.dir}/data"\nunix_socket = "${this.socket}"\n` +
      `[sandbox]\ntool_dir = "${tools}"\ncache_dir = "${CACHE}"\n` +
      `default_fuel = 1000000000000000\n` +
      `[logging]\naudit_dir = "${this.dir}/audit"\n`);
    this.log = fs.openSync(path.join(this.dir, 'server.log'), 'w');
    this.proc = spawn(BIN, ['serve', '--config', config], {
      env: { ...process.env, HOME: this.dir }, stdio: ['ignore', this.log, this.log],
    });
    await this.waitHealthy();
    return this;
  }

  readLog() {
    return fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8');
  }

  // The first start compiles every tool; later ones use the shared cache.
  async waitHealthy(timeoutMs = 300000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`server exited:\n${this.readLog()}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/health`);
        if (r.ok && (await r.json()).status === 'healthy') return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server not healthy:\n${this.readLog()}`);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    fs.closeSync(this.log);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// An SDK client connected to `clawbox mcp ARGS` over stdio.
async function connect(args, env = {}) {
  const transport = new StdioClientTransport({
    command: BIN,
    args: ['mcp', ...args],
    env: { HOME: os.tmpdir(), PATH: process.env.PATH, ...env },
    stderr: 'inherit',
  });
  const client = new Client({ name: 'clawbox-e2e', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

const textOf = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

let server;
let client;

before(async () => {
  server = await new Server().start();
  client = await connect(['--port', String(server.port)], { CLAWBOX_AUTH_TOKEN: server.token });
});

after(async () => {
  await client?.close();
  await server?.stop();
});

test('initialize negotiates a revision clawbox serves', () => {
  assert.equal(client.getServerVersion().name, 'clawbox');
  assert.deepEqual(client.getServerCapabilities().tools, { listChanged: true });
});

test('a tool added to the server is announced with tools/list_changed', async () => {
  let changed;
  const announced = new Promise((resolve) => { changed = resolve; });
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed());
  const tools = path.join(server.dir, 'tools');
  fs.copyFileSync(path.join(TOOLS, 'echo.wasm'), path.join(tools, 'echo_copy.wasm'));
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('no notifications/tools/list_changed within 60 s')),
      60000);
  });
  try {
    await Promise.race([announced, timeout]);
  } finally {
    clearTimeout(timer);
    fs.rmSync(path.join(tools, 'echo_copy.wasm'));
  }
  const { tools: listed } = await client.listTools();
  assert.ok(listed.some((t) => t.name === 'echo_copy'), 'the new tool is listed');
});

test('tools/list has every registered tool with its manifest schemas', async () => {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  for (const name of [...EXAMPLES, 'busy']) assert.ok(byName[name], `${name} listed`);
  const manifest = JSON.parse(fs.readFileSync(path.join(TOOLS, 'hash.json'), 'utf8'));
  assert.deepEqual(byName.hash.inputSchema, manifest.input_schema);
  assert.deepEqual(byName.hash.outputSchema, manifest.output_schema);
  assert.equal(byName.hash.description, manifest.tool.description);
  assert.deepEqual(byName.busy.inputSchema, { type: 'object' });
  assert.equal(byName.busy.outputSchema, undefined);
  for (const name of ['clawbox_spawn_container', 'clawbox_kill_container',
    'clawbox_list_containers', 'clawbox_start_agent', 'clawbox_stop_agent',
    'clawbox_list_agents']) {
    assert.ok(byName[name], `${name} listed`);
    assert.equal(byName[name].inputSchema.type, 'object');
  }
  assert.deepEqual(byName.clawbox_spawn_container.inputSchema.required, ['template']);
});

test('container tools answer in words', async () => {
  const list = await client.callTool({ name: 'clawbox_list_containers', arguments: {} });
  assert.notEqual(list.isError, true);
  assert.match(textOf(list), /No containers|clawbox-/);
  const spawn = await client.callTool({ name: 'clawbox_spawn_container',
    arguments: { template: 'nope' } });
  assert.equal(spawn.isError, true);
  assert.match(textOf(spawn), /template 'nope' not found/);
  const kill = await client.callTool({ name: 'clawbox_kill_container',
    arguments: { container_id: '../x' } });
  assert.equal(kill.isError, true);
  assert.match(textOf(kill), /container_id/);
});

test('agent tools answer in words', async () => {
  const list = await client.callTool({ name: 'clawbox_list_agents', arguments: {} });
  assert.notEqual(list.isError, true);
  assert.match(textOf(list), /No agents/);
  const start = await client.callTool({ name: 'clawbox_start_agent',
    arguments: { agent_id: 'nobody' } });
  assert.equal(start.isError, true);
  assert.match(textOf(start), /agent not found: nobody/);
  const stop = await client.callTool({ name: 'clawbox_stop_agent',
    arguments: { agent_id: '../x' } });
  assert.equal(stop.isError, true);
  assert.match(textOf(stop), /agent_id/);
});

test('echo returns its arguments as structured content', async () => {
  const r = await client.callTool({ name: 'echo', arguments: { hello: 'world' } });
  assert.notEqual(r.isError, true);
  assert.equal(r.structuredContent.tool, 'echo');
  assert.deepEqual(r.structuredContent.echo, { hello: 'world' });
  assert.deepEqual(JSON.parse(textOf(r)), r.structuredContent);
});

test('hash computes a SHA-256', async () => {
  const r = await client.callTool({ name: 'hash', arguments: { input: 'abc', algorithm: 'sha256' } });
  assert.notEqual(r.isError, true);
  assert.equal(r.structuredContent.hash,
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('an unknown tool is an isError result with the clawbox code and message', async () => {
  const r = await client.callTool({ name: 'nope', arguments: {} });
  assert.equal(r.isError, true);
  assert.equal(textOf(r), "tool_not_found: tool 'nope' not found");
});

test('a proxy denial reaches the model as words', async () => {
  const r = await client.callTool({ name: 'http_request', arguments: { url: 'https://example.com/' } });
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /^blocked: host example\.com is not in the allowlist for tool http_request .*clawbox tools allow http_request example\.com$/);
  assert.ok(!r.content[0].text.includes('{'), r.content[0].text);
});

test('a slow call blocks neither ping nor another call', async () => {
  const started = Date.now();
  const slow = client.callTool({ name: 'busy', arguments: {} });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await client.ping();
  const echo = await client.callTool({ name: 'echo', arguments: { n: 1 } });
  assert.deepEqual(echo.structuredContent.echo, { n: 1 });
  assert.ok(Date.now() - t0 < 1500, `ping and echo took ${Date.now() - t0} ms`);
  const r = await slow;
  assert.ok(Date.now() - started >= 1800, 'busy ran to its deadline');
  assert.equal(r.isError, true);
  assert.match(textOf(r), /^timeout: /);
});

test('the Unix socket works too', async () => {
  const c = await connect(['--socket', server.socket], { CLAWBOX_AUTH_TOKEN: server.token });
  try {
    const r = await c.callTool({ name: 'echo', arguments: { via: 'socket' } });
    assert.deepEqual(r.structuredContent.echo, { via: 'socket' });
  } finally {
    await c.close();
  }
});

test('a wrong token says what to fix', async () => {
  const c = await connect(['--port', String(server.port), '--token', 'wrong']);
  try {
    const r = await c.callTool({ name: 'echo', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /^auth_required: .*CLAWBOX_AUTH_TOKEN/);
  } finally {
    await c.close();
  }
});

test('server down: initialize works and calls say how to start it', async () => {
  const port = await freePort();
  const c = await connect(['--port', String(port)], { CLAWBOX_AUTH_TOKEN: 'x' });
  try {
    assert.equal(c.getServerVersion().name, 'clawbox');
    await c.ping();
    const r = await c.callTool({ name: 'echo', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /clawbox serve/);
    await assert.rejects(c.listTools(), /clawbox serve/);
  } finally {
    await c.close();
  }
});

// The raw framing of the real binary: an 11 MiB line is refused without
// ending the session, and malformed JSON gets -32700 with a null id.
test('over-long and malformed lines get JSON-RPC errors', async () => {
  const proc = spawn(BIN, ['mcp', '--port', '1'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise((r) => proc.once('exit', r));
  proc.stdin.write('x'.repeat(11 * 1024 * 1024) + '\n');
  proc.stdin.write('{"jsonrpc":"2.0","id":1,\n');
  proc.stdin.end('{"jsonrpc":"2.0","id":2,"method":"ping"}\n');
  assert.equal(await exited, 0);
  assert.deepEqual(lines.map((l) => [l.id, l.error?.code ?? 'ok']), [[null, -32700], [null, -32700], [2, 'ok']]);
  assert.match(lines[0].error.message, /too large/);
});

// A raw JSON-RPC peer on the stdio of `clawbox mcp ARGS`: writes one request
// per line and matches the response lines to the requests by id.
class RawClient {
  constructor(args, env) {
    this.proc = spawn(BIN, ['mcp', ...args], {
      env: { HOME: os.tmpdir(), PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.nextId = 1;
    this.pending = new Map();
    this.lines = [];
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        this.lines.push(msg);
        this.pending.get(msg.id)?.(msg);
        this.pending.delete(msg.id);
      }
    });
  }

  // The whole response message (result or error) to one request.
  request(method, params) {
    const id = this.nextId++;
    const reply = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method}`)), 30000);
      this.pending.set(id, (msg) => { clearTimeout(timer); resolve(msg); });
    });
    this.proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    return reply;
  }

  async close() {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    return exited;
  }
}

const META_2026 = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'clawbox-e2e-raw', version: '1.0.0' },
};

const assertComplete = (result) => {
  assert.equal(result.resultType, 'complete');
  assert.equal(result._meta['io.modelcontextprotocol/serverInfo'].name, 'clawbox');
};

test('2026-07-28: server/discover, tools/list and tools/call without initialize', async () => {
  const c = new RawClient(['--port', String(server.port)], { CLAWBOX_AUTH_TOKEN: server.token });
  try {
    const discover = await c.request('server/discover', { _meta: META_2026 });
    assert.equal(discover.error, undefined, JSON.stringify(discover.error));
    assertComplete(discover.result);
    assert.deepEqual(discover.result.supportedVersions,
      ['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26']);
    assert.deepEqual(discover.result.capabilities.tools, { listChanged: false });
    assert.equal(typeof discover.result.ttlMs, 'number');
    assert.ok(['public', 'private'].includes(discover.result.cacheScope));

    const list = await c.request('tools/list', { _meta: META_2026 });
    assertComplete(list.result);
    assert.equal(typeof list.result.ttlMs, 'number');
    assert.ok(['public', 'private'].includes(list.result.cacheScope));
    const names = list.result.tools.map((t) => t.name);
    for (const name of [...EXAMPLES, 'busy']) assert.ok(names.includes(name), `${name} listed`);
    assert.deepEqual(names, [...names].sort(), 'tools in a deterministic order');
    const manifest = JSON.parse(fs.readFileSync(path.join(TOOLS, 'echo.json'), 'utf8'));
    const echoTool = list.result.tools.find((t) => t.name === 'echo');
    assert.deepEqual(echoTool.inputSchema, manifest.input_schema);

    const call = await c.request('tools/call',
      { name: 'echo', arguments: { hello: '2026' }, _meta: META_2026 });
    assertComplete(call.result);
    assert.notEqual(call.result.isError, true);
    assert.deepEqual(call.result.structuredContent.echo, { hello: '2026' });
    assert.deepEqual(JSON.parse(call.result.content[0].text), call.result.structuredContent);

    const ping = await c.request('ping', { _meta: META_2026 });
    assert.equal(ping.error.code, -32601, 'ping is not part of 2026-07-28');

    const old = await c.request('tools/list',
      { _meta: { ...META_2026, 'io.modelcontextprotocol/protocolVersion': '1900-01-01' } });
    assert.equal(old.error.code, -32022);
    assert.equal(old.error.message, 'Unsupported protocol version');
    assert.deepEqual(old.error.data,
      { supported: discover.result.supportedVersions, requested: '1900-01-01' });
  } finally {
    assert.equal(await c.close(), 0);
  }
  assert.ok(c.lines.every((l) => l.jsonrpc === '2.0'), 'stdout carries only JSON-RPC');
});
