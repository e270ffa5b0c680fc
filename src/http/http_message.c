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

/* The reason phrase of a status: only informative, so a generic one will do. */
static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status < 200   ? "Informational"
		       : status < 300 ? "OK"
		       : status < 400 ? "Redirection"
		       : status < 500 ? "Client Error"
		                      : "Server Error";
	}
}

/* A 1xx, 204 or 304 carries no body, and says no length (RFC 9110 8.6). */
static bool has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static int out_build(int status, const char *type, const struct http_header *hdrs, size_t n_hdrs,
                     const char *allow, const void *body, size_t body_len, bool secret,
                     bool head_only, bool keep_alive, int minor, struct http_out *ret)
{
	/* room for the head, and the largest body a handler may give */
	struct buf b = BUF_INIT(HTTP_RESPONSE_MAX_BODY + 64u * 1024);
	bool send_body = has_body(status) && !head_only;
	int r;

	b.secret = secret; /* a hand-off's secrets leave no copy behind */
	r = buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (r == 0 && type && has_body(status))
		r = buf_printf(&b, "Content-Type: %s\r\n", type);
	if (r == 0 && has_body(status))
		r = buf_printf(&b, "Content-Length: %zu\r\n", body_len);
	for (size_t i = 0; r == 0 && i < n_hdrs; i++)
		r = buf_printf(&b, "%s: %s\r\n", hdrs[i].name, hdrs[i].value);
	if (r == 0 && allow)
		r = buf_printf(&b, "Allow: %s\r\n", allow);
	if (r == 0 && !keep_alive)
		r = buf_puts(&b, "Connection: close\r\n");
	else if (r == 0 && minor == 0)
		r = buf_puts(&b, "Connection: keep-alive\r\n");
	if (r == 0)
		r = buf_puts(&b, "\r\n");
	if (r == 0 && send_body && body_len)
		r = buf_append(&b, body, body_len);
	if (r < 0) {
		buf_release(&b);
		return -ENOMEM;
	}
	ret->data = buf_detach(&b, &ret->len);
	ret->off = 0;
	ret->close_after = !keep_alive;
	ret->secret = secret;
	return 0;
}

int http_out_build(const struct http_response *resp, bool head_only, bool keep_alive, int minor,
                   struct http_out *ret)
{
	static const char invalid[] = "{\"error\":\"handler gave no valid status\"}";

	/* a 1xx answer would not end the request: it is the server's to send */
	if (resp->status < 200 || resp->status > 599)
		return out_build(500, JSON_TYPE, NULL, 0, NULL, invalid, sizeof(invalid) - 1, false,
		                 head_only, keep_alive, minor, ret);
	return out_build(resp->status, resp->content_type, resp->headers,
	                 resp->n_headers < HTTP_RESPONSE_MAX_HEADERS ? resp->n_headers
	                                                             : HTTP_RESPONSE_MAX_HEADERS,
	                 NULL, resp->body.data, resp->body.len, resp->body.secret, head_only,
	                 keep_alive, minor, ret);
}

int http_out_json(int status, const char *json, const char *allow, bool keep_alive, int minor,
                  struct http_out *ret)
{
	return out_build(status, JSON_TYPE, NULL, 0, allow, json, strlen(json), false, false,
	                 keep_alive, minor, ret);
}

void http_out_release(struct http_out *o)
{
	if (o->data && o->secret)
		explicit_bzero(o->data, o->len);
	free(o->data);
	*o = (struct http_out){0};
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
	const struct conn *c = req->impl;

	return http_head_field(&c->head, name);
}

const char *http_request_arg(const struct http_request *req, const char *name)
{
	const struct conn *c = req->impl;

	return http_query_get(&c->args, name);
}
