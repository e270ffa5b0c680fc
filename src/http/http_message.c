/*
 * Responses a handler fills and the request accessors it reads: bounded,
 * typed (JSON or text), with headers checked before they are sent. Nothing
 * here echoes request data into an error.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/strutil.h"

void http_response_init(struct http_response *resp)
{
	resp->status = 200;
	resp->content_type = TEXT_TYPE;
	buf_init(&resp->body, HTTP_RESPONSE_MAX_BODY);
	resp->n_headers = 0;
}

void http_response_release(struct http_response *resp)
{
	if (resp)
		buf_release(&resp->body);
}

int http_response_to_mhd(const struct http_response *resp, struct MHD_Response **ret,
                         unsigned *ret_status)
{
	struct MHD_Response *r;
	bool valid = resp->status >= 100 && resp->status <= 599;
	static const char invalid[] = "{\"error\":\"handler gave no valid status\"}";

	if (valid)
		r = MHD_create_response_from_buffer(resp->body.len, (void *)buf_str(&resp->body),
		                                    MHD_RESPMEM_MUST_COPY);
	else
		r = MHD_create_response_from_buffer(sizeof(invalid) - 1, (void *)invalid,
		                                    MHD_RESPMEM_PERSISTENT);
	if (!r)
		return -ENOMEM;
	if (!valid) {
		if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE) != MHD_YES)
			goto fail;
		*ret = r;
		*ret_status = 500;
		return 0;
	}
	if (resp->content_type &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type) != MHD_YES)
		goto fail;
	for (size_t i = 0; i < resp->n_headers && i < HTTP_RESPONSE_MAX_HEADERS; i++)
		if (MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value) !=
		    MHD_YES)
			goto fail;
	*ret = r;
	*ret_status = (unsigned)resp->status;
	return 0;
fail:
	MHD_destroy_response(r);
	return -ENOMEM;
}

enum MHD_Result http_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

struct MHD_Response *http_json_response(const char *json, const char *allow)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return NULL;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE) != MHD_YES ||
	    (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

/* A body over the cap must not go out truncated: say so instead. */
static int response_set(struct http_response *resp, int status, const char *type, const char *body)
{
	int r;

	buf_reset(&resp->body);
	r = buf_puts(&resp->body, body ? body : "");
	if (r < 0) {
		buf_reset(&resp->body);
		resp->status = 500;
		resp->content_type = JSON_TYPE;
		(void)buf_puts(&resp->body, "{\"error\":\"response too large\"}");
		return r;
	}
	resp->status = status;
	resp->content_type = type;
	return 0;
}

int http_response_json(struct http_response *resp, int status, const char *json)
{
	return response_set(resp, status, JSON_TYPE, json);
}

int http_response_text(struct http_response *resp, int status, const char *text)
{
	return response_set(resp, status, TEXT_TYPE, text);
}

int http_response_error(struct http_response *resp, int status, const char *message)
{
	static const char hex[] = "0123456789abcdef";
	struct buf b = BUF_INIT(HTTP_RESPONSE_MAX_BODY);
	int r;

	r = buf_puts(&b, "{\"error\":\"");
	for (const unsigned char *p = (const unsigned char *)message; r == 0 && *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			r = buf_append(&b, esc, sizeof(esc));
		} else if (*p < 0x20 || *p == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 0xf]};
			r = buf_append(&b, esc, sizeof(esc));
		} else {
			r = buf_append(&b, p, 1);
		}
	}
	if (r == 0)
		r = buf_puts(&b, "\"}");
	if (r == 0)
		r = response_set(resp, status, JSON_TYPE, buf_str(&b));
	else
		(void)response_set(resp, 500, JSON_TYPE, "{\"error\":\"response too large\"}");
	buf_release(&b);
	return r;
}

bool http_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
			return false;
	}
	return true;
}

int http_response_header(struct http_response *resp, const char *name, const char *value)
{
	struct http_header *h;

	if (!http_is_token(name))
		return -EINVAL;
	/* These are the server's to write; a second copy would confuse clients. */
	if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Content-Type") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return -EINVAL;
	if (resp->n_headers >= HTTP_RESPONSE_MAX_HEADERS)
		return -E2BIG;
	h = &resp->headers[resp->n_headers];
	if (str_copy(h->name, name, sizeof(h->name)) >= sizeof(h->name) ||
	    str_copy(h->value, value, sizeof(h->value)) >= sizeof(h->value))
		return -E2BIG;
	resp->n_headers++;
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

const char *http_request_header(const struct http_request *req, const char *name)
{
	const struct request_state *rs = req->impl;

	return MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, name);
}

const char *http_request_arg(const struct http_request *req, const char *name)
{
	const struct request_state *rs = req->impl;

	return http_query_get(&rs->args, name);
}
