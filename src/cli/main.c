#include <stdio.h>

int main(void)
{
    puts("clawbox " CLAWBOX_VERSION);
    return 0;
}
