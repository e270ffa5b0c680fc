/*
 * The test oracle of webhook_parse: the parse it replaced, a jansson tree
 * of the whole body (json_loadb, JSON_REJECT_DUPLICATES) read field by
 * field. The unit tests and the fuzz target hand both the same input and
 * require the same answer; nothing in src/ links this.
 */
#ifndef RUNNERD_WEBHOOK_REFERENCE_H
#define RUNNERD_WEBHOOK_REFERENCE_H

#include "webhook/webhook.h"

/* As webhook_parse (headers already checked by the caller's twin call). */
int webhook_parse_reference(const struct webhook_headers *h, const char *body, size_t len,
                            struct webhook_delivery *ret, struct err *e);

/*
 * Both parses of one input: 0 when they agree (the same error status, or
 * the same delivery), else -1 with what differs in why. One difference is
 * expected: a raw NUL byte that jansson skips (after a number or literal)
 * the scan refuses.
 */
int webhook_parse_compare(const struct webhook_headers *h, const char *body, size_t len, char *why,
                          size_t cap);

#endif
