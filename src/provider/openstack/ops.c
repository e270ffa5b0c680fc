/*
 * The openstack backend's table of operations (provider_ops), its opening
 * (the clouds.yaml's cloud read, the ssh key read; nothing sent yet) and
 * closing (the secrets wiped), and what each operation may take.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"
#include "util/fileutil.h"

static void os_close(struct provider *p)
{
	struct os *o = p->priv;

	if (!o)
		return;
	httpc_free(o->http);
	config_cloud_release(&o->cloud);
	buf_release(&o->token);
	free(o->ca_file);
	free(o->ssh_pubkey);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->sg_lock);
	free(o);
	p->priv = NULL;
}

/*
 * A request is at most request_timeout; a create is a few lookups (the
 * first time), a security group, a key pair and the POST; a delete a
 * listing, the DELETE and polls until Nova has let go of the server (it
 * may take a minute), then the key pair and ports; a listing one request
 * per page (a few pages).
 */
static void os_deadlines(struct provider *p)
{
	const struct os *o = p->priv;
	int64_t req = o->request_ms;

	p->deadline_ms[PROVIDER_OP_CREATE] = 10 * req;
	p->deadline_ms[PROVIDER_OP_DELETE] = 6 * req + 120000;
	p->deadline_ms[PROVIDER_OP_GET] = 3 * req;
	p->deadline_ms[PROVIDER_OP_HEALTH] = 3 * req;
	p->deadline_ms[PROVIDER_OP_LIST] = 10 * req;
	p->deadline_ms[PROVIDER_OP_GC] = 10 * req;
}

static int os_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	const struct config_openstack *c = &pc->openstack;
	struct os *o;
	int r;

	if (!c->clouds_yaml || !*c->clouds_yaml || !c->cloud || !*c->cloud || !c->flavor ||
	    !*c->flavor || !c->network || !*c->network || c->request_timeout <= 0)
		return err_set(e, -EINVAL,
		               "providers.%s: clouds_yaml, cloud, flavor and network are needed",
		               pc->name);
	o = calloc(1, sizeof(*o));
	if (!o)
		return err_set(e, -ENOMEM, "openstack: out of memory");
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->sg_lock, NULL);
	buf_init_secret(&o->token, OS_TOKEN_MAX + 32);
	p->priv = o;
	str_copy(o->manager, p->manager, sizeof(o->manager));
	r = config_cloud_load(c->clouds_yaml, c->cloud, &o->cloud, e);
	if (r < 0)
		goto fail;
	if (!o->cloud.verify) {
		r = err_set(e, -EINVAL, "providers.%s: %s: verify: false is refused", pc->name,
		            c->clouds_yaml);
		goto fail;
	}
	str_copy(o->region,
	         c->region && *c->region ? c->region
	         : o->cloud.region_name  ? o->cloud.region_name
	                                 : "",
	         sizeof(o->region));
	str_copy(o->interface, c->interface && *c->interface ? c->interface : "public",
	         sizeof(o->interface));
	if (c->ca_file && *c->ca_file)
		o->ca_file = strdup(c->ca_file);
	else if (o->cloud.cacert)
		o->ca_file = strdup(o->cloud.cacert);
	str_copy(o->flavor, c->flavor, sizeof(o->flavor));
	str_copy(o->network, c->network, sizeof(o->network));
	os_secgroup_name(c->security_group, p->manager, o->secgroup, sizeof(o->secgroup));
	if (c->ssh_key && *c->ssh_key) {
		struct buf key = BUF_INIT(16 * 1024);
		r = file_read(c->ssh_key, key.max, false, &key, e);
		if (r < 0)
			goto fail;
		while (key.len > 0 && strchr("\r\n \t", key.data[key.len - 1]))
			key.data[--key.len] = '\0';
		if (key.len == 0 || strchr(key.data, '\n') || !strstr(key.data, "ssh-")) {
			buf_release(&key);
			r = err_set(e, -EINVAL,
			            "providers.%s: ssh_key %s is not an OpenSSH public key",
			            pc->name, c->ssh_key);
			goto fail;
		}
		o->ssh_pubkey = buf_detach(&key, NULL);
	}
	o->config_drive = c->config_drive;
	if (c->secret_url) {
		size_t n = str_copy(o->secret_url, c->secret_url, sizeof(o->secret_url));
		while (n > 0 && o->secret_url[n - 1] == '/')
			o->secret_url[--n] = '\0';
	}
	o->request_ms = (long)(c->request_timeout * 1000);
	r = httpc_new(&o->http, e);
	if (r < 0)
		goto fail;
	os_deadlines(p);
	p->traits = (struct provider_traits){0};
	snprintf(p->traits.note, sizeof(p->traits.note),
	         "Nova servers in security group %s; secrets through %s", o->secgroup,
	         o->secret_url[0] ? "the webhook listener's one-time hand-off"
	                          : "nothing (JIT off)");
	return 0;
fail:
	os_close(p);
	return r;
}

const struct provider_ops openstack_ops = {
        .type = "openstack",
        .open = os_open,
        .create = os_create,
        .get = os_get,
        .list = os_list,
        .delete = os_delete,
        .health = os_health,
        .gc = os_gc,
        .close = os_close,
};
