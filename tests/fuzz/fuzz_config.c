/*
 * libFuzzer target: runnerd.yaml from untrusted bytes. Whatever the input,
 * config_load_string() either gives a config or a list of errors, and
 * never crashes, leaks or reads out of bounds (ASan+UBSan); a config it
 * accepts must print and load back to the same text.
 */
#include "util/common.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL, *c2 = NULL;
	struct config_errors errs = {0}, errs2 = {0};
	struct buf out = BUF_INIT(1 << 20), out2 = BUF_INIT(1 << 20);

	if (config_load_string("fuzz.yaml", (const char *)data, size, &c, &errs) == 0) {
		if (config_print(c, &out) == 0 &&
		    config_load_string("fuzz.yaml", buf_str(&out), out.len, &c2, &errs2) == 0 &&
		    config_print(c2, &out2) == 0 && strcmp(buf_str(&out), buf_str(&out2)) != 0)
			abort(); /* print -> load -> print must be stable */
	}
	config_free(c);
	config_free(c2);
	config_errors_release(&errs);
	config_errors_release(&errs2);
	buf_release(&out);
	buf_release(&out2);
	return 0;
}
