/*
 * The HTTP/1.1 request parser of runnerd's own server, as pure functions:
 * no I/O, no threads, no allocation in the head parser. Everything here
 * reads bytes a peer sent, so it must never read past the buffer it is
 * given, never write past a caller's buffer, and refuse (with the status
 * to answer) whatever it cannot represent exactly.
 */
#ifndef RUNNERD_HTTP_PARSE_H
#define RUNNERD_HTTP_PARSE_H

#include "util/common.h"
#include "util/buf.h"

/* Request line + headers, at most (a longer head is refused with 431). */
#define HTTP_HEAD_MAX (32u * 1024)
/* Header fields in one head, at most (more: 431). */
#define HTTP_MAX_FIELDS 64

struct http_field {
	const char *name;  /* as sent (case kept), NUL-terminated */
	const char *value; /* leading and trailing spaces/tabs removed, NUL-terminated */
};

/* A request head parsed in place: every string points into the caller's buffer. */
struct http_head {
	const char *method; /* a token, as sent */
	const char *path;   /* percent-decoded path of the origin-form target, starts with '/' */
	const char *query;  /* raw text after the first '?', NULL when no '?' */
	int minor;          /* HTTP/1.<minor>: 0 or 1 */
	size_t n_fields;
	struct http_field fields[HTTP_MAX_FIELDS];
};

/*
 * Parse the head at the start of buf[0..len). Returns the head's length in bytes
 * (through the blank line that ends it) when it is complete and valid, and then
 * rewrites buf[0..that length) in place (NULs, decoded path) for *ret;
 * 0 when more bytes are needed (no complete head yet and len < HTTP_HEAD_MAX;
 * buf untouched); or a negative HTTP status to refuse it with:
 *   -400 malformed (bad request line, a field line without ':', whitespace between a
 *        field name and ':', obsolete line folding, a control character other than
 *        HT in a value, a bare CR or bare LF as line end, a target that does not start
 *        with '/', a bad or NUL-decoding %XX in the path, a method that is not a token,
 *        bytes < 0x21 or 0x7f in the target, an empty line before the request line is fine
 *        to reject too)
 *   -431 the head does not end within HTTP_HEAD_MAX bytes, or more than HTTP_MAX_FIELDS fields
 *   -505 "HTTP/" followed by a version other than 1.0 or 1.1 (e.g. HTTP/9.9, HTTP/2.0)
 * A negative result may be returned before the head is complete when what came
 * already is wrong (e.g. "\x00\x01" at the start, or a request line that cannot become
 * valid); it must then not depend on bytes not yet received in a way that would
 * refuse a valid head. Lines end with CRLF exactly.
 *
 * The bytes are judged strictly in order and the first fault decides, so a
 * refusal of a prefix is also the answer for any longer buffer starting with it.
 * An empty line before the request line is refused (400); a version is
 * 1*DIGIT "." 1*DIGIT (anything else after "HTTP/" is 400). Bytes >= 0x80 are
 * allowed in the target and in values (not in methods or names). buf and *ret
 * are only written on success.
 */
int http_head_parse(char *buf, size_t len, struct http_head *ret);

/* The first field called name (case-insensitive), NULL when absent. */
const char *http_head_field(const struct http_head *h, const char *name);

/* How the body of a request is framed, from its head. */
enum http_framing { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

/*
 * A Content-Length value: 1*DIGIT, nothing else (no sign, no space). 0 and
 * *ret; -EINVAL when it is not digits, -ERANGE past UINT64_MAX.
 */
int http_parse_length(const char *s, uint64_t *ret);

/*
 * The framing, and for HTTP_BODY_LENGTH the length (*ret_len; 0 otherwise).
 * 0, or a negative status: -400 when Content-Length is not all digits, overflows
 * uint64, or appears twice with different values (the same value twice is fine), or
 * when both Content-Length and Transfer-Encoding are present (request smuggling);
 * -501 when Transfer-Encoding is anything but "chunked" (case-insensitive, surrounding
 * spaces ignored; "gzip, chunked" is 501 too); -400 for Transfer-Encoding in HTTP/1.0.
 * No Content-Length and no Transfer-Encoding: HTTP_BODY_NONE.
 *
 * "The same value" is compared as a number ("5" and "05" agree). Two
 * Transfer-Encoding fields make a list of two codings: 501. The outputs are
 * only written on success.
 */
int http_head_framing(const struct http_head *h, enum http_framing *ret, uint64_t *ret_len);

/*
 * Whether the connection stays open after the answer: HTTP/1.1 unless a Connection
 * field lists the token "close"; HTTP/1.0 only when one lists "keep-alive". Tokens in
 * a comma-separated list, case-insensitive, spaces ignored; several Connection fields
 * all count. "close" wins over "keep-alive" when both are listed.
 */
bool http_head_keep_alive(const struct http_head *h);

/*
 * The Expect field: 0 when absent, 1 for "100-continue" (case-insensitive), -417
 * for anything else. Every Expect field must say "100-continue".
 */
int http_head_expect(const struct http_head *h);

/* A chunked body being decoded (zero it to start). */
struct http_chunked {
	int state;
	uint64_t left; /* bytes of the current chunk's data still to come */
	size_t line;   /* bytes of the current size line / trailer section seen */
};

/*
 * Decode in[0..len) of a chunked body (RFC 9112 7.1: hex size, optional ";ext" ignored,
 * CRLF, data, CRLF, ..., "0" CRLF, optional trailer fields, CRLF). Decoded data is
 * appended to out, never letting out->len exceed max. *used: bytes of in consumed.
 * Returns 1 when the body ended (*used stops right after its last CRLF: what follows is
 * the next request), 0 when all of in was consumed and more is needed, -400 when
 * malformed (a non-hex size, a size over 2^63, data not followed by CRLF, a size line or
 * the trailer section longer than 4096 bytes), -413 as soon as the data would exceed max
 * (before appending it), -ENOMEM if buf_append fails. Feeding byte by byte must give
 * the same result as feeding all at once.
 *
 * Details: max is lowered to out->max when that is smaller, so the cap is
 * always a 413. A chunk's whole size is checked against the cap when its size
 * line ends. The size line and the trailer section are counted with their
 * CRLFs. BWS is allowed between the size and ";". On a refusal, *used counts
 * the bytes before the offending one, and the refusal sticks: later calls
 * return it again and consume nothing (as 1 does once the body ended). After
 * -ENOMEM nothing of the failed piece was taken: the same bytes may be fed again.
 */
int http_chunked_feed(struct http_chunked *c, const char *in, size_t len, size_t *used,
                      struct buf *out, size_t max);

#endif
