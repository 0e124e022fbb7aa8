/* LLVMFuzzerInitialize for the targets that handle JSON from a worker: the
 * process runs jansson with the aborting allocator, as the server does
 * (src/cli/main.c). */
#include "core/json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cb_json_setup();
    return 0;
}
