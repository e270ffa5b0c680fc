/*
 * What the files of the openstack backend share, and what its unit tests
 * and fuzzer reach without a cloud: the backend's state, the pure parsers
 * of what Keystone, Nova, Neutron and Glance answer (parse.c, which treat
 * every answer as hostile), the pure builders of what runnerd sends
 * (build.c), and the functions each file offers the others, lowest layer
 * first. Never included from outside src/provider/openstack/ (but by its
 * tests): the rest of runnerd has openstack.h, and the front backend.h.
 */
#ifndef RUNNERD_PROVIDER_OS_INTERNAL_H
#define RUNNERD_PROVIDER_OS_INTERNAL_H

#include "provider/backend.h"
#include "provider/openstack.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#define OS_URL_MAX        2048
#define OS_ID_MAX         PROVIDER_ID_MAX /* a Nova, Neutron or Glance id */
#define OS_RESPONSE_MAX   (4u << 20)      /* one answer but a listing */
#define OS_PAGE_MAX       (32u << 20)     /* one page of a listing */
#define OS_PAGES_MAX      1000            /* pages of one listing */
#define OS_ERRTEXT_MAX    240
#define OS_TOKEN_MAX      8192
#define OS_RENEW_MS       (5 * 60 * 1000) /* a token is renewed this long before it expires */
#define OS_CONNECT_MS     10000
#define OS_POLL_MS        500
#define OS_USER_DATA_MAX  (64u << 10) /* what Nova takes, base64 */
#define OS_HANDOFF_TTL_MS (2 * 3600 * 1000)
#define OS_KEY_MANAGER    "runnerd-manager"
#define OS_KEY_FLAVOR     "runnerd-flavor"
#define OS_KEY_RUNNER     "runner-name"
#define OS_HOME           "/opt/runnerd"

enum os_service { OS_COMPUTE = 0, OS_NETWORK, OS_IMAGE, OS_SERVICES };

/* A resolved name: what the config said, and the id it is. */
struct os_ref {
	char name[256];
	char id[OS_ID_MAX];
};

struct os {
	struct httpc *http;
	char manager[MANAGER_NAME_MAX + 1];
	struct config_cloud cloud; /* its secret is the password or credential */
	char region[256];          /* "" = any */
	char interface[16];
	char *ca_file; /* NULL = the system store */
	char flavor[256], network[256], secgroup[256];
	char *ssh_pubkey; /* NULL = no key pair */
	bool config_drive;
	char secret_url[OS_URL_MAX]; /* "" = no hand-off */
	long request_ms;
	atomic_uint_least64_t n_requests; /* sent, Keystone's included */

	pthread_mutex_t sg_lock; /* held across a security group's look-up and making */
	pthread_mutex_t lock;    /* what follows */
	struct buf token;        /* secret; empty = none */
	int64_t token_until;     /* wall ms at which it is to be renewed */
	char endpoint[OS_SERVICES][OS_URL_MAX];
	struct os_ref flavor_ref, network_ref, secgroup_ref; /* id "" = not yet */
	struct os_ref images[16];                            /* resolved images */
	size_t n_images;
};

/* One server as Nova lists it. */
struct os_server {
	struct instance in;               /* name, id, flavor, state, created_at */
	char owner[MANAGER_NAME_MAX + 1]; /* its runnerd-manager, "" when none */
};

/* ---- parse.c: the APIs' answers, pure ------------------------------- */

/* A string member of o, NULL when absent or not a string. */
const char *os_jstr(const json_t *o, const char *key);
/* Parse len bytes of JSON: an object, or -EBADMSG. */
int os_json(const void *body, size_t len, json_t **ret);
/*
 * An error answer (status >= 400) -> -errno and a message with the API's
 * own text (Nova's {"<kind>": {"message"}}, Neutron's {"NeutronError"},
 * Keystone's {"error"}, or plain text), bounded and printable: 404
 * -ENOENT, 409 -EEXIST, 400 -EINVAL, 401 -EACCES, 403 -EACCES (-EDQUOT
 * when it says quota), 413 -EDQUOT, 429 502 503 504 -EAGAIN, else -EIO.
 */
int os_parse_error(const char *what, long status, const void *body, size_t len, struct err *e);
/* Nova's status -> cloud state (see openstack.h). */
enum cloud_state os_state(const char *status);
/*
 * Keystone's token answer -> when it expires (wall ms) and the endpoint of
 * each service (compute, network, image) for interface and region (""
 * any), an http(s) URL without a trailing '/'; network gets /v2.0 and
 * image /v2 when the catalog's URL lacks them. -EBADMSG when it is not a
 * token, -ENOENT (naming the service) when the catalog has no endpoint.
 */
int os_parse_token(const void *body, size_t len, const char *interface, const char *region,
                   int64_t *ret_expires, char ret_ep[OS_SERVICES][OS_URL_MAX], struct err *e);
/*
 * A server object -> *ret. -EBADMSG when it is not one (no id or name of
 * the right size, a status that is not a string).
 */
int os_parse_server(const json_t *o, struct os_server *ret);
/*
 * One page of GET /servers/detail -> the servers of manager appended to
 * *ret (owned name and runnerd-manager; unless keep_dups, a second server
 * of a name, on this page or an earlier one, keeps the newer), and the next page's URL into next
 * ("" when last). A next link that is not on base (the compute endpoint) is -EBADMSG: a hostile
 * answer must not send the token elsewhere. One entry that is not a
 * server makes the page -EBADMSG.
 */
int os_parse_servers(const void *body, size_t len, const char *manager, const char *base,
                     bool keep_dups, struct instance_list *ret, char next[OS_URL_MAX],
                     struct err *e);
/*
 * A listing {"<coll>": [{"id", "name"}...]} -> the id of the one entry
 * whose name or id is ref: -ENOENT none, -ENOTUNIQ more than one by name,
 * -EBADMSG not a listing.
 */
int os_parse_pick(const void *body, size_t len, const char *coll, const char *ref,
                  char ret_id[OS_ID_MAX], struct err *e);
/* An object {"<key>": {"id": ...}} (a created resource) -> its id; -EBADMSG. */
int os_parse_id(const void *body, size_t len, const char *key, char ret_id[OS_ID_MAX],
                struct err *e);
/*
 * A listing of named resources {"<coll>": [{"name"|<name_key>...}]} -> the
 * names (and ids, "" when it has none) owned by manager
 * (^<manager>-[0-9a-f]{12}$), at most cap. Key pairs nest each entry in
 * {"keypair": {...}}: nest names that key ("" none).
 */
int os_parse_owned(const void *body, size_t len, const char *coll, const char *nest,
                   const char *manager, struct os_ref *ret, size_t cap, size_t *ret_n,
                   struct err *e);

/*
 * A listing of security groups -> those runnerd made for manager: a name
 * starting with "<manager>-" and the description os_secgroup_description
 * gives, at most cap. -EBADMSG when it is not a listing.
 */
int os_parse_groups(const void *body, size_t len, const char *manager, struct os_ref *ret,
                    size_t cap, size_t *ret_n, struct err *e);

/* ---- build.c: what runnerd sends, pure ------------------------------ */

/* The security group a provider uses: configured ("" or NULL: <manager>-runners). */
void os_secgroup_name(const char *configured, const char *manager, char *out, size_t cap);
/* The description of a security group runnerd makes for manager (how gc knows it). */
void os_secgroup_description(const char *manager, char *out, size_t cap);

/* The body of POST /v3/auth/tokens for cloud (secret inside: a secret buf). */
int os_build_auth(const struct config_cloud *cloud, struct buf *ret);
/*
 * The user data around script: a #!/bin/sh script that fetches url (the
 * hand-off, when not NULL) into /opt/runnerd/secret.env, writes the
 * startup script and runs it. No secret. NULL when out of memory.
 */
char *os_build_user_data(const char *script, const char *url);
/* What POST /servers creates. */
struct os_server_req {
	const char *name, *flavor_name; /* the runnerd flavor, for metadata */
	const char *image_id, *flavor_id, *network_id, *secgroup;
	const char *key_name; /* NULL = none */
	bool config_drive;
	const char *user_data; /* raw: base64-encoded here */
	const char *manager;
};
/* The body of POST /servers (JSON text) into ret; -E2BIG when the user data is too big. */
int os_build_server(const struct os_server_req *q, struct buf *ret);
/* Base64 of len bytes into ret (appended). */
int os_base64(const void *data, size_t len, struct buf *ret);

/* ---- api.c: Keystone and requests ----------------------------------- */

struct os_req {
	const char *method; /* NULL = GET */
	enum os_service svc;
	const char *path; /* after the endpoint, escaped; or: */
	const char *url;  /* a full URL (a next link) */
	const char *body; /* JSON text, or NULL */
	size_t max_body;  /* 0 = OS_RESPONSE_MAX */
	const char *what; /* names it in messages */
};
/* Percent-encode s into b (a path segment or a query value). */
int os_escape(struct buf *b, const char *s);
/*
 * One API request with the token (got or renewed first; a 401 renews it
 * once and the request is sent again). The answer, any status, in *ret.
 * Nothing is sent once c is cancelled or past its deadline.
 */
int os_request(struct os *o, const struct provider_call *c, const struct os_req *q,
               struct httpc_response *ret, struct err *e);
/* os_request, a status >= 400 turned into os_parse_error's errno and message. */
int os_call(struct os *o, const struct provider_call *c, const struct os_req *q,
            struct httpc_response *ret, struct err *e);
/* The endpoint of svc (a token got first when none); copied into out. */
int os_endpoint(struct os *o, const struct provider_call *c, enum os_service svc, char *out,
                size_t cap, struct err *e);

/* ---- resources.c: names, the security group, key pairs, gc ----------- */

/* The ids of the flavor, network and image (cached), and the security group made when missing. */
int os_resolve(struct os *o, const struct provider_call *c, const char *image,
               char image_id[OS_ID_MAX], char flavor_id[OS_ID_MAX], char network_id[OS_ID_MAX],
               struct err *e);
/*
 * The security group's id (cached) into id: made when missing and ours
 * (one create at a time: two at once would make two of one name).
 */
int os_secgroup_ensure(struct os *o, const struct provider_call *c, char id[OS_ID_MAX],
                       struct err *e);
/* Delete the key pair and ports named name (404 = gone). */
int os_remove_extras(struct os *o, const struct provider_call *c, const char *name, struct err *e);
int os_gc(struct provider *p, const struct provider_call *c, struct err *e);

/* ---- server.c -------------------------------------------------------- */

/* Every server of this manager named name ("" = all), every page; keep_dups: see above. */
int os_list_servers(struct os *o, const struct provider_call *c, const char *name, bool keep_dups,
                    struct instance_list *ret, struct err *e);
int os_create(struct provider *p, const struct provider_call *c, const struct instance_spec *spec,
              struct instance *ret, struct err *e);
int os_get(struct provider *p, const struct provider_call *c, const char *name,
           struct instance *ret, struct err *e);
int os_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
            struct err *e);
int os_delete(struct provider *p, const struct provider_call *c, const char *name, struct err *e);
int os_health(struct provider *p, const struct provider_call *c, const char *name, enum health *ret,
              struct err *e);

#endif
