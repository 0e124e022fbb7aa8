/* echo: returns its params, to check that a tool runs and sees its input.
 * Output: {"tool":"echo","version":"0.1.0","echo":<params>,"message":...}. */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

int main(void)
{
    struct cb_tool_error err;
    struct cb_json *params, *out;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    out = cb_json_new_object();
    cb_json_set(out, "tool", cb_json_new_string("echo"));
    cb_json_set(out, "version", cb_json_new_string("0.1.0"));
    cb_json_set(out, "echo", params);
    cb_json_set(out, "message", cb_json_new_string("Hello from clawbox WASM sandbox!"));
    cb_output(out);
    cb_json_free(out);
    return 0;
}
