/* The one description of every configuration option. Keys, defaults and
 * environment variables follow the reference; keys marked "(clawbox)" in
 * their doc are our additions. */
#include "config/config_table.h"
#include "config/config.h"
#include "core/home.h"

#include <stddef.h>

#define OFF(field)  offsetof(struct cb_config, field)
#define TOFF(field) offsetof(struct cb_image_template, field)
#define MIB         (1024u * 1024u)

const struct cb__opt cb__config_opts[] = {
    {"server", "host", CB__OPT_STRING, "127.0.0.1", 0, 0, "CLAWBOX_HOST", OFF(server.host), NULL,
     "Address the TCP listener binds to."},
    {"server", "port", CB__OPT_UINT, "9800", 1, 65535, "CLAWBOX_PORT", OFF(server.port), NULL,
     "TCP port of the API."},
    {"server", "auth_token", CB__OPT_STRING, NULL, 0, 0, "CLAWBOX_AUTH_TOKEN",
     OFF(server.auth_token), NULL,
     "Bearer token for every route but /health and /metrics. When unset, a random token is "
     "generated at start and never shown; run `clawbox init` to get a known one."},
    {"server", "unix_socket", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(server.unix_socket), NULL,
     "Optional Unix socket path serving the same API, created with mode 0600."},
    {"server", "data_dir", CB__OPT_PATH, CB_HOME_TILDE "/" CB_HOME_DATA, 0, 0, "CLAWBOX_DATA_DIR",
     OFF(server.data_dir), NULL, "(clawbox) Directory of the state database and caches."},
    {"server", "max_concurrent_executions", CB__OPT_UINT, "10", 1, 1024, NULL,
     OFF(server.max_concurrent_executions), NULL,
     "Protected requests served at once, across all routes."},
    {"server", "max_queued_requests", CB__OPT_UINT, "256", 0, 100000, NULL,
     OFF(server.max_queued_requests), NULL,
     "(clawbox) Protected requests that may wait for a free slot; more get 503."},
    {"server", "queue_timeout_ms", CB__OPT_UINT, "30000", 0, 600000, NULL,
     OFF(server.queue_timeout_ms), NULL,
     "(clawbox) How long a protected request waits for a slot before 503 resource_exhausted."},
    {"server", "max_body_bytes", CB__OPT_UINT, "10485760", 1024, 64 * MIB, NULL,
     OFF(server.max_body_bytes), NULL, "(clawbox) Largest request body; larger gets 413."},
    {"server", "shutdown_grace_ms", CB__OPT_UINT, "10000", 0, 600000, NULL,
     OFF(server.shutdown_grace_ms), NULL,
     "(clawbox) On SIGTERM/SIGINT, how long in-flight requests may take to finish."},
    {"server", "http_threads", CB__OPT_UINT, "0", 0, 64, NULL, OFF(server.http_threads), NULL,
     "(clawbox) Threads serving HTTP I/O; 0 = one per CPU."},
    {"server", "max_connections", CB__OPT_UINT, "4096", 16, 1000000, NULL,
     OFF(server.max_connections), NULL,
     "(clawbox) API connections open at once, over both listeners; more are answered 503 "
     "and closed. The Unix socket has 64 more, which TCP clients cannot take. The open-file "
     "limit is raised to fit them at start."},
    {"server", "max_connections_per_address", CB__OPT_UINT, "256", 0, 1000000, NULL,
     OFF(server.max_connections_per_address), NULL,
     "(clawbox) API connections one client address may hold (an IPv6 client: its /64); more "
     "are answered 503 and closed; 0 = no cap. The Unix socket is not capped."},
    {"server", "request_head_timeout_ms", CB__OPT_UINT, "10000", 100, 600000, NULL,
     OFF(server.request_head_timeout_ms), NULL,
     "(clawbox) Time a client has to send a whole request head, from the connection's start "
     "or the end of the previous response; a partial head then gets 408, an idle connection "
     "is closed."},
    {"server", "request_body_timeout_ms", CB__OPT_UINT, "60000", 100, 3600000, NULL,
     OFF(server.request_body_timeout_ms), NULL,
     "(clawbox) Time a client has to send a whole request body after its head; then 408 and "
     "the connection closes."},

    {"sandbox", "tool_dir", CB__OPT_PATH, "./tools/wasm", 0, 0, "CLAWBOX_TOOL_DIR",
     OFF(sandbox.tool_dir), NULL, "Directory scanned for tool modules (`*.wasm`)."},
    {"sandbox", "default_fuel", CB__OPT_UINT, "100000000", 1, UINT64_MAX, NULL,
     OFF(sandbox.default_fuel), NULL, "Fuel (instruction budget) of one execution."},
    {"sandbox", "default_timeout_ms", CB__OPT_UINT, "30000", 1, 3600000, NULL,
     OFF(sandbox.default_timeout_ms), NULL, "Wall-clock limit of one execution."},
    {"sandbox", "max_timeout_ms", CB__OPT_UINT, "300000", 1, 3600000, NULL,
     OFF(sandbox.max_timeout_ms), NULL, "(clawbox) Cap on any per-tool or per-request timeout."},
    {"sandbox", "max_memory_mb", CB__OPT_UINT, "64", 1, 4096, NULL, OFF(sandbox.max_memory_mb),
     NULL, "(clawbox) Cap on a tool's linear memory."},
    {"sandbox", "max_host_calls", CB__OPT_UINT, "100", 0, 100000, NULL, OFF(sandbox.max_host_calls),
     NULL, "Host calls one execution may make."},
    {"sandbox", "executions_per_worker", CB__OPT_UINT, "100", 1, 1000, NULL,
     OFF(sandbox.executions_per_worker), NULL,
     "(clawbox) Executions one worker process runs, one at a time and each in a fresh "
     "instance of the tool, before it exits; 1 = a fresh process for every execution."},
    {"sandbox", "cache_dir", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(sandbox.cache_dir), NULL,
     "(clawbox) Compiled-tool cache; unset = `<data_dir>/cache`."},
    {"sandbox", "compile_timeout_ms", CB__OPT_UINT, "120000", 1000, 3600000, NULL,
     OFF(sandbox.compile_timeout_ms), NULL,
     "(clawbox) Wall-clock limit of translating and compiling one tool (ten times this for the "
     "background -O2 build), and the cap of its CPU budget (5 s + 100 ms per KiB of module)."},
    {"sandbox", "watch_tools", CB__OPT_BOOL, "true", 0, 0, NULL, OFF(sandbox.watch_tools), NULL,
     "Reload tools when files in tool_dir change."},

    {"proxy", "max_response_bytes", CB__OPT_UINT, "1048576", 1, 1024 * MIB, NULL,
     OFF(proxy.max_response_bytes), NULL, "Largest upstream response body."},
    {"proxy", "default_timeout_ms", CB__OPT_UINT, "30000", 1, 600000, NULL,
     OFF(proxy.default_timeout_ms), NULL, "Timeout of one proxied request."},
    {"proxy", "rate_limit", CB__OPT_UINT, "10", 1, 1000000, NULL, OFF(proxy.rate_limit), NULL,
     "Requests per second refilled into each tool's or container's token bucket."},
    {"proxy", "rate_limit_burst", CB__OPT_UINT, "50", 1, 1000000, NULL, OFF(proxy.rate_limit_burst),
     NULL, "(clawbox) Token bucket capacity."},
    {"proxy", "allow_wildcard_all", CB__OPT_BOOL, "false", 0, 0, NULL,
     OFF(proxy.allow_wildcard_all), NULL,
     "(clawbox) Whether a `*` allowlist entry (any host), or a wildcard on a "
     "public suffix such as `*.com`, is accepted."},
    {"proxy", "allow_private_cidrs", CB__OPT_STRLIST, "", 0, 0, NULL,
     OFF(proxy.allow_private_cidrs), NULL,
     "(clawbox) Special-purpose address ranges exempted from the SSRF block (tests only)."},
    {"proxy", "ca_bundle", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(proxy.ca_bundle), NULL,
     "(clawbox) Extra CA bundle for upstream TLS."},

    {"credentials", "store_path", CB__OPT_PATH, CB_HOME_TILDE "/" CB_HOME_CREDENTIALS, 0, 0, NULL,
     OFF(credentials.store_path), NULL, "Encrypted credential store."},
    {"credentials", "key_file", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(credentials.key_file), NULL,
     "(clawbox) File (mode 0600) holding the store's 64-hex key; unset = "
     "`CLAWBOX_MASTER_KEY`."},

    {"logging", "format", CB__OPT_ENUM, "json", 0, 0, NULL, OFF(logging.format), "json|text",
     "Log line format on stderr."},
    {"logging", "level", CB__OPT_ENUM, "info", 0, 0, "CLAWBOX_LOG_LEVEL", OFF(logging.level),
     "error|warn|info|debug|trace", "Lowest level logged."},
    {"logging", "audit_dir", CB__OPT_PATH, "./audit", 0, 0, NULL, OFF(logging.audit_dir), NULL,
     "Directory of the audit log."},
    {"logging", "audit_max_file_bytes", CB__OPT_UINT, "10485760", 4096, 1024 * MIB, NULL,
     OFF(logging.audit_max_file_bytes), NULL, "(clawbox) Audit file size that triggers rotation."},
    {"logging", "proxy_audit_sync", CB__OPT_ENUM, "background", 0, 0, NULL,
     OFF(logging.proxy_audit_sync), "background|before_response",
     "(clawbox) When a proxied request's audit line reaches stable storage: `background` "
     "(written before the response, so it survives a crash or kill of the server; its "
     "fdatasync starts within 2 ms, shared with the lines that came meanwhile, and ends "
     "about one sync later) or `before_response`. "
     "Container connections' and container execs' lines follow it too."},

    {"containers", "max_containers", CB__OPT_UINT, "10", 0, 10000, NULL,
     OFF(containers.max_containers), NULL,
     "Containers alive at once (finished ones do not count); 0 refuses every spawn."},
    {"containers", "runtime", CB__OPT_ENUM, "auto", 0, 0, NULL, OFF(containers.runtime),
     "auto|crun|runc|none",
     "(clawbox) OCI runtime: `auto` prefers crun and falls back to runc; `none` turns "
     "containers off."},
    {"containers", "egress", CB__OPT_ENUM, "transparent", 0, 0, NULL, OFF(containers.egress),
     "transparent|socket-only",
     "(clawbox) How a container reaches the network. `transparent`: its own network namespace "
     "in which every TCP connection and DNS query arrives at clawbox and goes through the "
     "proxy under the container's policy; `socket-only`: no network but the proxy socket "
     "`/run/clawbox/proxy.sock` (which works in both modes)."},
    {"containers", "runtime_root", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(containers.runtime_root),
     NULL,
     "(clawbox) The runtime's state directory (`--root`); unset = `<data_dir>/oci`. Only "
     "this server's containers live there."},
    {"containers", "image_store", CB__OPT_OPT_PATH, NULL, 0, 0, NULL, OFF(containers.image_store),
     NULL, "(clawbox) Local image store; unset = `<data_dir>/images`."},
    {"containers", "default_image", CB__OPT_STRING, "clawbox/agent-base:latest", 0, 0, NULL,
     OFF(containers.default_image), NULL, "(clawbox) Image of a spawn that names none."},
    {"containers", "default_timeout_ms", CB__OPT_UINT, "120000", 1000, UINT64_MAX, NULL,
     OFF(containers.default_timeout_ms), NULL,
     "(clawbox) Lifetime of a container whose request sets no `timeout_ms`."},
    {"containers", "max_timeout_ms", CB__OPT_UINT, "3600000", 1000, UINT64_MAX, NULL,
     OFF(containers.max_timeout_ms), NULL,
     "(clawbox) Longest lifetime a request may ask for; larger values are capped. Also the "
     "lifetime of an agent's container without `lifecycle.max_lifetime_ms`."},
    {"containers", "default_memory_mb", CB__OPT_UINT, "512", 16, 1048576, NULL,
     OFF(containers.default_memory_mb), NULL,
     "(clawbox) Memory (and memory+swap) limit of a request that sets none or 0."},
    {"containers", "max_memory_mb", CB__OPT_UINT, "2048", 16, 1048576, NULL,
     OFF(containers.max_memory_mb), NULL,
     "(clawbox) Largest memory limit a request may ask for; larger values are capped."},
    {"containers", "max_cpu_percent", CB__OPT_UINT, "100", 1, 100000, NULL,
     OFF(containers.max_cpu_percent), NULL,
     "(clawbox) CPU quota of a container, in percent of one CPU."},
    {"containers", "max_pids", CB__OPT_UINT, "256", 8, 1048576, NULL, OFF(containers.max_pids),
     NULL, "(clawbox) Processes and threads a container may have."},
    {"containers", "max_output_bytes", CB__OPT_UINT, "1048576", 1024, 1024 * MIB, NULL,
     OFF(containers.max_output_bytes), NULL,
     "(clawbox) Bytes of stdout and stderr kept per container; the rest is dropped and "
     "counted."},
    {"containers", "default_exec_timeout_ms", CB__OPT_UINT, "60000", 1, UINT64_MAX, NULL,
     OFF(containers.default_exec_timeout_ms), NULL,
     "(clawbox) Time an exec whose request sets no `timeout_ms` may run (capped by "
     "`max_timeout_ms`)."},
    {"containers", "max_execs_per_container", CB__OPT_UINT, "4", 1, 256, NULL,
     OFF(containers.max_execs_per_container), NULL,
     "(clawbox) Execs running at once in one container; more are refused with 429."},
    {"containers", "max_file_bytes", CB__OPT_UINT, "10485760", 4096, 1024 * MIB, NULL,
     OFF(containers.max_file_bytes), NULL,
     "(clawbox) Largest file `GET /containers/{id}/files` sends and `PUT` takes (its request "
     "body may be this large whatever `[server] max_body_bytes` says; read at start)."},
    {"containers", "max_exec_output_bytes", CB__OPT_UINT, "1048576", 1024, 64 * MIB, NULL,
     OFF(containers.max_exec_output_bytes), NULL,
     "(clawbox) Bytes of stdout and of stderr kept per exec; the rest is dropped and the "
     "answer says `truncated`."},
    {"containers", "tmp_size_mb", CB__OPT_UINT, "256", 1, 1048576, NULL,
     OFF(containers.tmp_size_mb), NULL, "(clawbox) Size of a container's tmpfs `/tmp`."},
    {"containers", "userns_base", CB__OPT_UINT, "1000000000", 65536, 3000000000ULL, NULL,
     OFF(containers.userns_base), NULL,
     "(clawbox) First host uid/gid of the ranges containers are mapped into (65536 each); "
     "no host user may own these ids. Agents keep one range each across starts, past the "
     "first 10000 ranges."},
    {"containers", "retention_ms", CB__OPT_UINT, "3600000", 0, UINT64_MAX, NULL,
     OFF(containers.retention_ms), NULL,
     "(clawbox) How long a finished container stays listed before it is removed."},
    {"containers", "workspace_root", CB__OPT_PATH, CB_HOME_TILDE "/" CB_HOME_WORKSPACES, 0, 0, NULL,
     OFF(containers.workspace_root), NULL,
     "Parent directory of agent workspaces: each agent gets <workspace_root>/<agent_id>, and a "
     "workspace.host_path must lie beneath it."},

    {"container_policy", "network_allowlist", CB__OPT_STRLIST, "", 0, 0, NULL,
     OFF(container_policy.network_allowlist), NULL, "Hosts every container may reach."},
    {"container_policy", "allowed_credentials", CB__OPT_STRLIST, "", 0, 0, NULL,
     OFF(container_policy.allowed_credentials), NULL, "Credentials containers may use."},
    {"container_policy", "allowed_policies", CB__OPT_STRLIST, "wasm_only,container", 0, 0, NULL,
     OFF(container_policy.allowed_policies), NULL,
     "Sandbox policies a spawn may ask for (`wasm_only`, `container`, "
     "`container_direct`)."},
    {"container_policy", "allowed_images", CB__OPT_STRLIST,
     "ghcr.io/n0xmare/,alpine:,ubuntu:,debian:,clawbox/", 0, 0, NULL,
     OFF(container_policy.allowed_images), NULL,
     "(clawbox) Image prefixes a spawn may use: `repo/` admits everything under it, "
     "`name:` admits every tag of `name`."},
    {"container_policy", "tls", CB__OPT_ENUM, "passthrough", 0, 0, NULL, OFF(container_policy.tls),
     "passthrough|intercept",
     "HTTPS under transparent egress: `passthrough` relays the bytes to the name the SNI gives "
     "(allowlist by SNI; no injection, no redaction); `intercept` terminates TLS with a "
     "per-container CA (its certificate at `/run/clawbox/ca.pem`, named by `SSL_CERT_FILE`, "
     "`REQUESTS_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`, and bound over the image's system CA "
     "bundle) and runs the full pipeline."},

    {"tools", "default_language", CB__OPT_ENUM, "c", 0, 0, NULL, OFF(tools.default_language),
     "c|rust|js|ts", "Language of `clawbox new-tool` without `--lang`; only `c` is scaffolded."},
};
const size_t cb__config_nopts = sizeof(cb__config_opts) / sizeof(cb__config_opts[0]);

const struct cb__opt cb__template_opts[] = {
    {"images.templates.<name>", "image", CB__OPT_STRING, NULL, 0, 0, NULL, TOFF(image), NULL,
     "(not used yet) Container image (required)."},
    {"images.templates.<name>", "description", CB__OPT_STRING, "", 0, 0, NULL, TOFF(description),
     NULL, "(not used yet) Shown by `clawbox list images`."},
    {"images.templates.<name>", "network_allowlist", CB__OPT_STRLIST, "", 0, 0, NULL,
     TOFF(network_allowlist), NULL, "(not used yet) Hosts the container may reach."},
    {"images.templates.<name>", "credentials", CB__OPT_STRLIST, "", 0, 0, NULL, TOFF(credentials),
     NULL, "(not used yet) Credentials injected for it."},
    {"images.templates.<name>", "command", CB__OPT_STRLIST, NULL, 0, 0, NULL, TOFF(command), NULL,
     "(not used yet) Command to run."},
    {"images.templates.<name>", "max_lifetime_ms", CB__OPT_UINT, "0", 0, UINT64_MAX, NULL,
     TOFF(max_lifetime_ms), NULL, "(not used yet) Lifetime cap; 0 = none."},
};
const size_t cb__template_nopts = sizeof(cb__template_opts) / sizeof(cb__template_opts[0]);
