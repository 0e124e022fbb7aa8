/* clawbox: the command-line front end. Each verb is a thin client of the
 * library in src/lib/. */
#include "cli.h"
#include "containers/runtime.h"
#include "core/json.h"
#include "sandbox/worker.h"

#include <stdio.h>
#include <string.h>

struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct verb verbs[] = {
    {"init", cmd_init, "create ~/.clawbox with a config file and an auth token"},
    {"serve", cmd_serve, "run the clawbox server"},
    {"health", cmd_health, "print the server's /health as JSON"},
    {"status", cmd_status, "print a short summary of the server's health"},
    {"run", cmd_run, "run a tool once: clawbox run TOOL [PARAMS|-]"},
    {"tools", cmd_tools, "list, register or reload tools"},
    {"list", cmd_list,
     "list tools, containers or image templates: clawbox list tools|containers|images"},
    {"spawn", cmd_spawn, "start a container from an image template: clawbox spawn TEMPLATE"},
    {"kill", cmd_kill, "kill and remove a container: clawbox kill CONTAINER_ID"},
    {"exec", cmd_exec, "run a command in a running container: clawbox exec ID -- CMD [ARGS...]"},
    {"cp", cmd_cp, "copy a file into or out of a running container: clawbox cp SRC DST"},
    {"agents", cmd_agents,
     "register, list, show, start, stop or remove agents: clawbox agents "
     "create|list|get|start|stop|delete"},
    {"config-reference", cmd_config_reference, "print the configuration reference (Markdown)"},
    {"new-tool", cmd_new_tool, "scaffold a C tool project: clawbox new-tool NAME"},
    {"build", cmd_build, "build C/C++ tool projects to wasm32-wasi"},
    {"add", cmd_add,
     "install a module (add tool NAME FILE.wasm) or add an image template (add image NAME --image "
     "I)"},
    {"remove", cmd_remove,
     "uninstall a module (remove tool NAME) or an image template (remove image NAME)"},
    {"image", cmd_image, "import, build, list or remove container images (local store)"},
    {"creds", cmd_creds, "add, list or remove credentials in the encrypted store"},
    {"audit", cmd_audit, "verify the audit log's hash chain: clawbox audit verify"},
    {"logs", cmd_logs,
     "print the audit log (clawbox logs [--tool T] [--follow]) or a container's output "
     "(--container ID)"},
    {"doctor", cmd_doctor, "check this installation and print what to fix"},
    {"mcp", cmd_mcp, "serve the tools to MCP clients (Claude Code, ...) on stdio"},
};

static int usage(FILE *f)
{
    fprintf(f,
            "clawbox %s: sandboxed tool execution for AI agents\n\n"
            "Usage: clawbox [--version] [--help] <command> [options]\n\nCommands:\n",
            CLAWBOX_VERSION);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-18s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\nRun 'clawbox help <command>' or 'clawbox <command> --help' for the options of "
               "a command.\n");
    return f == stdout ? 0 : 2;
}

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(name, verbs[i].name) == 0)
            return &verbs[i];
    return NULL;
}

/* clawbox help VERB: the verb's own --help. */
static int help(const char *name)
{
    const struct verb *v = find_verb(name);
    if (v == NULL) {
        cli_fail("unknown command '%s'; run 'clawbox --help' for the list", name);
        return 2;
    }
    char *args[] = {(char *)v->name, "--help", NULL};
    return v->run(2, args);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    cb_json_setup();
    /* Internal: the worker zygote the server starts (see sandbox/worker.h). */
    if (strcmp(argv[1], "__zygote") == 0)
        return cb_zygote_main(3);
    /* Internal: a container's monitor (see containers/runtime.h). */
    if (strcmp(argv[1], "__container-monitor") == 0)
        return cb_ct_monitor_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("clawbox %s\n", CLAWBOX_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "help") == 0)
        return argc > 2 ? help(argv[2]) : usage(stdout);
    const struct verb *v = find_verb(argv[1]);
    if (v != NULL)
        return v->run(argc - 1, argv + 1);
    cli_fail("unknown command '%s'; run 'clawbox --help' for the list", argv[1]);
    return 2;
}
