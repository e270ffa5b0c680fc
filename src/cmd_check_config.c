/* STUB */
#include "util/common.h"
#include "cmd.h"
int cmd_check_config(int argc, char **argv) { return 1; }
