/*
 * Checks of the file as a whole, once it has been walked: required keys,
 * keys of which only one may be given, the flavors (unique names, min_idle
 * within max, labels, the provider each names, an implied provider for a
 * type no entry has), providers no flavor uses, local providers' uid
 * ranges (room for their flavors, no overlap), the queue, webhook and
 * repo-policy rules, files that must be readable, URLs holding a password;
 * and the secrets are loaded from here. It reports a problem only where the
 * walk found the values involved usable, so nothing is reported twice, and
 * it never reads a secret itself (config_secrets.c does).
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/strutil.h"

#include <libfyaml.h>

/* The items of a list field: base of item i. */
static void *list_item(const struct config *c, const struct config_field *lf, size_t i)
{
	return (char *)*(void **)config_at(c, lf->off) + i * lf->elem_size;
}

static size_t list_count(const struct config *c, const struct config_field *lf)
{
	return *(size_t *)config_at(c, lf->aux);
}

static void check_required(struct loader *l, bool root_ok)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const struct config_field *lf = config_field_list_of(f->scope);
		size_t n = f->scope == CONFIG_SCOPE_ROOT ? 1 : list_count(l->c, lf);

		if (!(f->flags & CONFIG_F_REQUIRED))
			continue;
		for (size_t j = 0; j < n; j++) {
			const void *base = f->scope == CONFIG_SCOPE_ROOT ? (void *)l->c
			                                                 : list_item(l->c, lf, j);
			const struct config_field *parent = config_field_parent(f);

			if (!config_field_applies(f, config_scope_kind(f->scope, base)))
				continue;
			struct seen *ps;
			struct pos p;
			char disp[512];

			if (config_seen_find(l, f, base))
				continue;
			if (parent) {
				ps = config_seen_find(l, parent, base);
				if (!ps || !ps->ok)
					continue; /* the parent's own problem is reported */
				p = ps->key;
			} else if (f->scope == CONFIG_SCOPE_ROOT) {
				if (!root_ok)
					continue;
				p = l->root;
			} else {
				ps = config_seen_find(l, lf, base);
				if (!ps || !ps->ok)
					continue;
				p = ps->val;
			}
			config_field_display(l, f, base, disp, sizeof(disp));
			config_error(l, p, disp, "missing required key");
		}
	}
}

static const struct config_field *root_field(const char *path)
{
	const struct config_field *f = config_field_find(CONFIG_SCOPE_ROOT, path);
	if (!f)
		abort(); /* a typo in this file, caught by every test */
	return f;
}

/* Given = a non-empty string, or an optional section that is present. */
static bool given(const struct loader *l, const struct config_field *f)
{
	if (f->type == CONFIG_T_SECTION)
		return *(bool *)config_at(l->c, f->aux);
	return **(char **)config_at(l->c, f->off) != '\0';
}

static bool pos_before(struct pos a, struct pos b)
{
	return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* At most one (exactly one when required) of keys under section may be given. */
static void one_of(struct loader *l, const char *section, const char *const *keys, size_t n,
                   bool required, const char *why)
{
	const struct config_field *first = NULL;
	struct pos first_pos = {0, 0};
	char all[256], path[128];
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s%s",
		                        i == 0 ? "" : (i + 1 == n ? " or " : ", "), keys[i]);
	/* the first given, in file order, stands; every later one is an error */
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s.%s", section, keys[i]);
		const struct config_field *f = root_field(path);
		struct pos p = config_field_pos(l, f, l->c);
		if (given(l, f) && (!first || pos_before(p, first_pos))) {
			first = f;
			first_pos = p;
		}
	}
	for (size_t i = 0; first && i < n; i++) {
		snprintf(path, sizeof(path), "%s.%s", section, keys[i]);
		const struct config_field *f = root_field(path);
		if (f != first && given(l, f))
			config_error(l, config_field_pos(l, f, l->c), f->path,
			             "conflicts with %s; give only one of %s", first->path, all);
	}
	if (!first && required)
		config_error(l, config_field_pos(l, root_field(section), l->c), section,
		             "one of %s is required%s", all, why);
}

static void check_readable(struct loader *l, const struct config_field *f)
{
	const char *v = *(char **)config_at(l->c, f->off);
	struct stat st;

	if (!*v)
		return;
	if (stat(v, &st) < 0 || access(v, R_OK) < 0)
		config_error(l, config_field_pos(l, f, l->c), f->path, "cannot read %s: %s", v,
		             strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_error(l, config_field_pos(l, f, l->c), f->path, "%s: not a regular file", v);
}

/*
 * A URL that holds a password: the placeholder --print wrote, or a real one
 * in a config file other users can read.
 */
static void check_url_password(struct loader *l, const struct config_field *f)
{
	const char *v = *(char **)config_at(l->c, f->off);
	struct seen *s = config_seen_find(l, f, l->c);
	size_t off, len, rl = strlen(CONFIG_REDACTED);

	if (!s || !s->ok || !config_url_password(v, &off, &len) || len == 0)
		return;
	if (len == rl && memcmp(v + off, CONFIG_REDACTED, rl) == 0)
		config_warn(l, s->val, f->path,
		            "the password is " CONFIG_REDACTED
		            ", as check-config --print writes it; "
		            "put the real one back");
	else if (l->file_mode & 004)
		config_warn(l, s->val, f->path,
		            "this URL holds a password and %s is readable by others (mode %04o); "
		            "chmod o-rwx",
		            l->name, (unsigned)(l->file_mode & 07777));
}

/* Not given (the default stands), or given and valid. */
static bool value_ok(const struct loader *l, const struct config_field *f, const void *base)
{
	struct seen *s = config_seen_find(l, f, base);
	return !s || s->ok;
}

static void check_labels(struct loader *l, struct config_flavor *fl,
                         const struct config_field *labels_f)
{
	struct seen *s = config_seen_find(l, labels_f, fl);
	const char *mine = arch_name(fl->arch);
	const char *other = arch_name(fl->arch == ARCH_X64 ? ARCH_ARM64 : ARCH_X64);
	const char *implied[WORDS_IMPLIED_LABELS];
	char disp[256], ipath[300], b[CONFIG_SHOWN_MAX + 8];
	struct fy_node *item;
	void *it = NULL;

	if (!s || !s->ok)
		return;
	words_implied_labels(fl->arch, implied);
	config_field_display(l, labels_f, fl, disp, sizeof(disp));
	for (size_t i = 0; i < fl->labels.n && (item = fy_node_sequence_iterate(s->node, &it));
	     i++) {
		const char *lab = fl->labels.v[i];
		struct pos p = config_node_pos(item, s->val);
		char m[128];
		bool bad = !config_check_label(lab, m, sizeof(m)); /* reported already */

		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i);
		for (size_t j = 0; j < ARRAY_SIZE(implied) && !bad; j++)
			if (strcasecmp(lab, implied[j]) == 0) {
				/* harmless: every runner carries it anyway */
				config_warn(l, p, ipath, "label '%s' is implied; it can be removed",
				            config_shown(lab, b, sizeof(b)));
				bad = true;
			}
		if (!bad && strcasecmp(lab, other) == 0) {
			config_error(l, p, ipath, "label '%s' contradicts arch %s", lab, mine);
			bad = true;
		}
		for (size_t j = 0; j < i && !bad; j++)
			if (strcasecmp(lab, fl->labels.v[j]) == 0) {
				config_warn(l, p, ipath, "duplicate label '%s'; it can be removed",
				            config_shown(lab, b, sizeof(b)));
				bad = true;
			}
	}
}

/*
 * An implied provider: a flavor names a type that has no entry of that name
 * (provider: lxd, no providers.lxd). It takes every default of its type.
 * parse_map kept room for one per type; without a providers key there is
 * no array yet.
 */
static struct config_provider *imply_provider(struct loader *l, const char *type)
{
	struct config *c = l->c;
	struct config_provider *pv;

	if (!c->providers) {
		c->providers = calloc(config_provider_type_count(), sizeof(*c->providers));
		if (!c->providers) {
			l->nomem = true;
			return NULL;
		}
	}
	pv = &c->providers[c->n_providers++];
	config_provider_imply(l, pv, type);
	return l->nomem ? NULL : pv;
}

/* Every flavor's provider exists (or is implied), and has what it needs. */
static void check_flavor_provider(struct loader *l, struct config_flavor *fl)
{
	const struct config_field *prov_f = config_field_find(CONFIG_SCOPE_FLAVOR, "provider");
	const struct config_field *image_f = config_field_find(CONFIG_SCOPE_FLAVOR, "image");
	const struct config_provider *pv = config_provider_find(l->c, fl->provider);
	char disp[256], all[128];

	if (!value_ok(l, prov_f, fl))
		return;
	if (!pv && config_name_index(config_explicit_types, fl->provider) >= 0) {
		config_field_display(l, prov_f, fl, disp, sizeof(disp));
		config_error(l, config_field_pos(l, prov_f, fl), disp,
		             "type %s needs keys of its own: add an entry under providers "
		             "with type: %s",
		             fl->provider, fl->provider);
		return;
	}
	if (!pv && config_name_index(config_provider_types, fl->provider) >= 0)
		pv = imply_provider(l, fl->provider);
	if (!pv) {
		if (l->nomem)
			return;
		config_names_list(config_provider_types, all, sizeof(all));
		config_field_display(l, prov_f, fl, disp, sizeof(disp));
		config_error(
		        l, config_field_pos(l, prov_f, fl), disp,
		        "no provider named '%s' under providers, and it is not a provider type of "
		        "this runnerd (%s)",
		        fl->provider, all);
		return;
	}
	if (pv->type && !*fl->image && config_name_index(config_image_types, pv->type) >= 0) {
		config_field_display(l, image_f, fl, disp, sizeof(disp));
		config_error(l, config_field_pos(l, image_f, fl), disp,
		             "required for a flavor on an %s provider", pv->type);
	}
}

/*
 * An openstack provider's cloud is in its clouds.yaml, usable: its problems
 * are reported at the cloud key, with the place in clouds.yaml. Its ssh_key
 * is readable. (Nothing is kept: the provider reads the file when it opens.)
 */
static void check_openstack(struct loader *l, const struct config_provider *pv)
{
	const struct config_field *yf =
	        config_field_find_kind(CONFIG_SCOPE_PROVIDER, "clouds_yaml", "openstack");
	const struct config_field *cf =
	        config_field_find_kind(CONFIG_SCOPE_PROVIDER, "cloud", "openstack");
	const struct config_field *kf =
	        config_field_find_kind(CONFIG_SCOPE_PROVIDER, "ssh_key", "openstack");
	const struct config_openstack *o = &pv->openstack;
	struct config_cloud cloud = {0};
	struct err e = {0};
	char disp[256];

	if (*o->ssh_key && value_ok(l, kf, pv) && access(o->ssh_key, R_OK) < 0) {
		config_field_display(l, kf, pv, disp, sizeof(disp));
		config_error(l, config_field_pos(l, kf, pv), disp, "cannot read %s: %s", o->ssh_key,
		             strerror(errno));
	}
	if (!*o->clouds_yaml || !*o->cloud || !value_ok(l, yf, pv) || !value_ok(l, cf, pv))
		return;
	if (access(o->clouds_yaml, R_OK) < 0) {
		config_field_display(l, yf, pv, disp, sizeof(disp));
		config_error(l, config_field_pos(l, yf, pv), disp, "cannot read %s: %s",
		             o->clouds_yaml, strerror(errno));
		return;
	}
	config_field_display(l, cf, pv, disp, sizeof(disp));
	if (config_cloud_load(o->clouds_yaml, o->cloud, &cloud, &e) < 0) {
		config_error(l, config_field_pos(l, cf, pv), disp, "%s", e.msg);
		return;
	}
	if (!cloud.verify)
		config_error(l, config_field_pos(l, cf, pv), disp,
		             "%s: verify: false is refused (give the CA in ca_file or cacert)",
		             o->clouds_yaml);
	config_cloud_release(&cloud);
}

/* A provider no flavor names is harmless (it may hold instances to clean up): a warning. */
static void check_unused_providers(struct loader *l)
{
	const struct config_field *mf = root_field("providers");

	for (size_t i = 0; i < l->c->n_providers; i++) {
		const struct config_provider *pv = &l->c->providers[i];
		struct seen *s = config_seen_find(l, mf, pv);
		char disp[128];
		bool used = false;

		for (size_t j = 0; j < l->c->n_flavors && !used; j++)
			used = strcmp(l->c->flavors[j].provider, pv->name) == 0;
		if (used || pv->implied || !s)
			continue;
		snprintf(disp, sizeof(disp), "providers.%s", pv->name);
		config_warn(
		        l, s->key, disp,
		        "no flavor uses this provider (runnerd opens it only to remove instances "
		        "it still holds there)");
	}
}

/*
 * Ranges others hand out, where an account or a container made later would
 * share a uid with an instance: only a risk today, so a warning. (Accounts
 * and subordinate ids that exist are refused when the provider opens.)
 */
static const struct {
	uint32_t first, last;
	const char *what;
} uid_reserved[] = {
        {1, 60000, "accounts (useradd's system and login ranges)"},
        {60001, 65533, "systemd's home, container and dynamic users"},
        {100000, 600165535, "subordinate ids useradd hands out (/etc/subuid)"},
        {524288, 1879048191, "systemd-nspawn's container ranges"},
};

/*
 * A local provider's uid range: one uid per instance it can hold at once
 * (the max of its flavors, added up), no other local provider's uids (each
 * kills the processes of its range that none of its instances owns), and
 * preferably clear of ranges others hand out.
 */
static void check_local_uids(struct loader *l, size_t i)
{
	const struct config_field *uf =
	        config_field_find_kind(CONFIG_SCOPE_PROVIDER, "uid_range", "local");
	const struct config_provider *pv = &l->c->providers[i];
	uint32_t first, last;
	uint64_t count, need = 0;
	struct pos at;
	char disp[128];

	if (!uf || !value_ok(l, uf, pv) ||
	    config_uid_range_parse(pv->local.uid_range, &first, &last) < 0)
		return;
	count = (uint64_t)last - first + 1;
	at = config_field_pos(l, uf, pv);
	snprintf(disp, sizeof(disp), "providers.%s.uid_range", pv->name);
	for (size_t j = 0; j < l->c->n_flavors; j++)
		if (strcmp(l->c->flavors[j].provider, pv->name) == 0)
			need += (uint64_t)l->c->flavors[j].max;
	if (count < need)
		config_error(l, at, disp,
		             "%" PRIu64 " uids for %" PRIu64
		             " instances (the max of its flavors, added up): "
		             "each instance needs a uid of its own",
		             count, need);
	else if (count < 2 * need)
		config_warn(l, at, disp,
		            "%" PRIu64 " uids for %" PRIu64 " instances: few to spare, a deleted "
		            "instance's uid is given out again soon",
		            count, need);
	for (size_t j = 0; j < i; j++) {
		const struct config_provider *o = &l->c->providers[j];
		uint32_t ofirst, olast;
		if (!o->type || strcmp(o->type, "local") != 0 || !value_ok(l, uf, o) ||
		    config_uid_range_parse(o->local.uid_range, &ofirst, &olast) < 0 ||
		    ofirst > last || olast < first || str_eq(o->local.work_dir, pv->local.work_dir))
			continue;
		config_error(
		        l, at, disp,
		        "overlaps providers.%s.uid_range: each local provider kills the processes "
		        "of its range that are none of its instances'",
		        o->name);
	}
	for (size_t k = 0; k < ARRAY_SIZE(uid_reserved); k++)
		if (first <= uid_reserved[k].last && last >= uid_reserved[k].first)
			config_warn(l, at, disp, "overlaps %" PRIu32 "-%" PRIu32 ", %s",
			            uid_reserved[k].first, uid_reserved[k].last,
			            uid_reserved[k].what);
}

/*
 * runner.storage: memory is a tmpfs the startup script mounts inside the
 * instance as root. A local provider's runners are unprivileged processes
 * on this machine, which can mount nothing: refused for them. On LXD the
 * tmpfs is charged to the container's memory limit, so it must leave room
 * for the job itself.
 */
static void check_storage(struct loader *l)
{
	const struct config_field *sf = root_field("runner.storage");
	const struct config_field *zf = root_field("runner.storage_size");
	const struct config_field *mem_f =
	        config_field_find(CONFIG_SCOPE_FLAVOR, "resources.memory");
	const struct config *c = l->c;
	char size[32], mem[32], disp[256];

	if (c->runner.storage != RUNNER_STORAGE_MEMORY || !value_ok(l, sf, c))
		return;
	for (size_t i = 0; i < c->n_flavors; i++) {
		const struct config_flavor *fl = &c->flavors[i];
		const struct config_provider *pv = config_provider_find(c, fl->provider);

		if (!pv || !pv->type)
			continue; /* the flavor's provider is reported */
		if (strcmp(pv->type, "local") == 0) {
			config_error(l, config_field_pos(l, sf, c), sf->path,
			             "memory is not possible for flavor %s: its provider %s is of "
			             "type local, whose runners cannot mount a tmpfs (use disk, or "
			             "an lxd or openstack provider)",
			             fl->name, pv->name);
			continue;
		}
		if (strcmp(pv->type, "lxd") != 0 || !value_ok(l, zf, c) ||
		    !value_ok(l, mem_f, fl) || c->runner.storage_size < fl->resources.memory)
			continue;
		format_size(c->runner.storage_size, size, sizeof(size));
		format_size(fl->resources.memory, mem, sizeof(mem));
		config_field_display(l, zf, c, disp, sizeof(disp));
		config_error(l, config_field_pos(l, zf, c), disp,
		             "%s of tmpfs leaves nothing for the jobs of flavor %s: its instances "
		             "have %s of memory (resources.memory), and the tmpfs counts in it",
		             size, fl->name, mem);
	}
}

static void check_flavors(struct loader *l)
{
	const struct config_field *flf = root_field("flavors");
	const struct config_field *name_f = config_field_find(CONFIG_SCOPE_FLAVOR, "name");
	const struct config_field *min_f = config_field_find(CONFIG_SCOPE_FLAVOR, "min_idle");
	const struct config_field *max_f = config_field_find(CONFIG_SCOPE_FLAVOR, "max");
	const struct config_field *labels_f = config_field_find(CONFIG_SCOPE_FLAVOR, "labels");
	struct seen *s = config_seen_find(l, flf, l->c);
	char disp[256];

	if (s && s->ok && l->c->n_flavors < (size_t)flf->min)
		config_error(l, s->key, "flavors", "at least one flavor is required");
	for (size_t i = 0; i < l->c->n_flavors; i++) {
		struct config_flavor *fl = &l->c->flavors[i];
		struct seen *ns = config_seen_find(l, name_f, fl);

		if (ns && ns->ok)
			for (size_t j = 0; j < i; j++) {
				struct seen *os;
				if (strcmp(fl->name, l->c->flavors[j].name) != 0)
					continue;
				os = config_seen_find(l, name_f, &l->c->flavors[j]);
				if (!os || !os->ok)
					continue;
				config_field_display(l, name_f, fl, disp, sizeof(disp));
				config_error(l, ns->val, disp,
				             "duplicate flavor name '%s' (first at line %d)",
				             fl->name, os->val.line);
				break;
			}
		if (fl->min_idle > fl->max && value_ok(l, min_f, fl) && value_ok(l, max_f, fl)) {
			const struct config_field *at_f =
			        config_seen_find(l, min_f, fl) ? min_f : max_f;
			config_field_display(l, at_f, fl, disp, sizeof(disp));
			config_error(l, config_field_pos(l, at_f, fl), disp,
			             "min_idle (%" PRId64 ") must not exceed max (%" PRId64 ")",
			             fl->min_idle, fl->max);
		}
		check_flavor_provider(l, fl);
		check_labels(l, fl, labels_f);
	}
	check_unused_providers(l);
	for (size_t i = 0; i < l->c->n_providers; i++)
		if (l->c->providers[i].type && strcmp(l->c->providers[i].type, "local") == 0)
			check_local_uids(l, i);
		else if (l->c->providers[i].type &&
		         strcmp(l->c->providers[i].type, "openstack") == 0)
			check_openstack(l, &l->c->providers[i]);
}

void config_validate(struct loader *l, bool root_ok)
{
	static const char *const auth[] = {"token_file", "token_env", "app"};
	static const char *const wh[] = {"secret_file", "secret_env"};
	static const char *const qu[] = {"uri_file", "uri_env"};
	struct config *c = l->c;
	struct seen *gs;
	size_t n;

	check_required(l, root_ok);
	if (!root_ok)
		return; /* the top level is not a mapping: nothing more to say */
	/* derived values */
	n = strlen(c->github.api_url);
	while (n > 0 && c->github.api_url[n - 1] == '/')
		c->github.api_url[--n] = '\0';
	c->github.is_org = strchr(c->github.path, '/') == NULL;

	gs = config_seen_find(l, root_field("github"), c);
	if (gs && gs->ok)
		one_of(l, "github", auth, 3, true, "");
	if (*c->github.path && !c->github.is_org && strcmp(c->github.runner_group, "default") != 0)
		config_error(
		        l, config_field_pos(l, root_field("github.runner_group"), c),
		        "github.runner_group",
		        "runner groups are for organizations only; github.path names a repository");
	one_of(l, "webhook", wh, 2, false, "");
	if (c->webhook.max_connections_per_address >= c->webhook.max_connections)
		config_warn(
		        l,
		        config_field_pos(l, root_field("webhook.max_connections_per_address"), c),
		        "webhook.max_connections_per_address",
		        "%" PRId64 " limits nothing: max_connections is %" PRId64
		        "; 0 says no limit",
		        c->webhook.max_connections_per_address, c->webhook.max_connections);
	/* in repository scope the sweep of the runs finds the jobs of deliveries so lost */
	if (config_catch_up_after_reboot(c) && c->webhook.hook_id <= 0 && c->github.is_org)
		config_warn(l, config_field_pos(l, root_field("webhook.answer_after"), c),
		            "webhook.answer_after",
		            "write without webhook.hook_id in organization scope: a power cut can "
		            "lose the deliveries answered in its last milliseconds, and nothing "
		            "would ask GitHub for them again (set hook_id, or answer_after: "
		            "flush)");
	if (config_answer_after_write(c) && c->queue.kind == QUEUE_AMQP)
		config_warn(l, config_field_pos(l, root_field("webhook.answer_after"), c),
		            "webhook.answer_after",
		            "write changes nothing with queue.kind amqp: each job is confirmed by "
		            "the broker before its 202 either way");
	if (c->queue.kind == QUEUE_AMQP) {
		one_of(l, "queue", qu, 2, true, " for kind amqp");
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(qu); i++) {
			char p[64];
			snprintf(p, sizeof(p), "queue.%s", qu[i]);
			if (given(l, root_field(p)))
				config_error(l, config_field_pos(l, root_field(p), c), p,
				             "only used with kind amqp");
		}
	}
	if (*c->runner.repo_policy_url && !*c->runner.repo_policy_token_file)
		config_error(
		        l, config_field_pos(l, root_field("runner.repo_policy_compliance.url"), c),
		        "runner.repo_policy_compliance.token_file", "required when url is set");
	if (!*c->runner.repo_policy_url && *c->runner.repo_policy_token_file)
		config_error(l,
		             config_field_pos(
		                     l, root_field("runner.repo_policy_compliance.token_file"), c),
		             "runner.repo_policy_compliance.url",
		             "required when token_file is set");
	if (c->runner.proxy.aproxy && !*c->runner.proxy.aproxy_address && !*c->runner.proxy.http &&
	    !*c->runner.proxy.https)
		config_error(
		        l, config_field_pos(l, root_field("runner.proxy.aproxy"), c),
		        "runner.proxy.aproxy",
		        "needs a proxy to redirect to: runner.proxy.http, https or aproxy_address");
	check_flavors(l);
	check_storage(l);
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		if (f->scope != CONFIG_SCOPE_ROOT)
			continue;
		if (f->flags & (CONFIG_F_SECRET_FILE | CONFIG_F_SECRET_ENV))
			config_secret_load(l, f);
		if (f->flags & CONFIG_F_READABLE)
			check_readable(l, f);
		if (f->flags & CONFIG_F_URL_PASSWORD)
			check_url_password(l, f);
	}
}
