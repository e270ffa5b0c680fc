"""The configuration files of the test OpenStack (tests/lib/openstack.py):
one directory per service under the cloud's root, SQLite databases, logs and
locks in that root, every service on 127.0.0.1. Only files are written here;
nothing is started. Every service authenticates to the others as the
cloud's admin (there is no separate service user: it is a test cloud)."""

import os
import shutil

# How long the services trust a token they validated: short, so that
# Cloud.revoke_tokens() takes effect within it; with no cache at all every
# API call is also a validation by keystone and servers take 5x as long.
TOKEN_CACHE_TIME = 5


def _ini(path, sections):
    with open(path, "w") as f:
        for name, opts in sections.items():
            f.write("[%s]\n" % name)
            for k, v in opts.items():
                f.write("%s = %s\n" % (k, v))
            f.write("\n")
    os.chmod(path, 0o600)  # passwords


def _auth(c, prefix=""):
    """The options of a keystoneauth password plugin, as the admin."""
    return {
        prefix + "auth_type": "password",
        prefix + "auth_url": c.url("keystone") + "/v3",
        prefix + "username": "admin",
        prefix + "password": c.admin_password,
        prefix + "project_name": "admin",
        prefix + "user_domain_name": "Default",
        prefix + "project_domain_name": "Default",
        prefix + "region_name": c.region,
    }


def _authtoken(c):
    a = _auth(c)
    del a["region_name"]
    a["www_authenticate_uri"] = c.url("keystone") + "/v3"
    a["token_cache_time"] = str(TOKEN_CACHE_TIME)
    return a


def _db(c, name):
    return "sqlite:///" + c.path(name + ".db")


def _common(c, svc):
    return {
        "debug": "false",
        "use_stderr": "false",
        "log_file": c.path("log", svc + ".log"),
    }


def keystone(c):
    d = c.path("etc", "keystone")
    os.makedirs(d, exist_ok=True)
    _ini(os.path.join(d, "keystone.conf"), {
        "DEFAULT": _common(c, "keystone"),
        "database": {"connection": _db(c, "keystone")},
        "fernet_tokens": {"key_repository": c.path("keystone", "fernet-keys")},
        "fernet_receipts": {"key_repository": c.path("keystone", "fernet-receipts")},
        "credential": {"key_repository": c.path("keystone", "credential-keys")},
        # role assignments, roles, projects and the catalog from memory (a
        # token's validation looked them up in SQLite a dozen times: 0.75 s
        # of CPU per token per service process); never the tokens, their
        # revocations or the users themselves, so revoke_tokens() still
        # takes effect at once
        "cache": {"enabled": "true", "backend": "dogpile.cache.memory"},
        "token": {"provider": "fernet", "expiration": str(c.token_expiration),
                  "caching": "false"},
        "revoke": {"caching": "false"},
        # bcrypt's least cost: every password login (the CLI's, each call) is quick
        "identity": {"password_hash_rounds": "4", "caching": "false"},
        "assignment": {"caching": "true"},
        "role": {"caching": "true"},
        "resource": {"caching": "true"},
        "catalog": {"caching": "true"},
    })
    return d


def placement(c):
    d = c.path("etc", "placement")
    os.makedirs(d, exist_ok=True)
    _ini(os.path.join(d, "placement.conf"), {
        "DEFAULT": _common(c, "placement"),
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": _db(c, "placement")},
        "keystone_authtoken": _authtoken(c),
    })
    return d


def glance(c):
    d = c.path("etc", "glance")
    os.makedirs(d, exist_ok=True)
    os.makedirs(c.path("glance", "images"), exist_ok=True)
    os.makedirs(c.path("glance", "staging"), exist_ok=True)
    shutil.copy("/etc/glance/glance-api-paste.ini", d)
    _ini(os.path.join(d, "glance-api.conf"), {
        "DEFAULT": dict(_common(c, "glance"), workers="1",
                        node_staging_uri="file://" + c.path("glance", "staging")),
        "database": {"connection": _db(c, "glance")},
        "keystone_authtoken": _authtoken(c),
        "paste_deploy": {"flavor": "keystone"},
        "glance_store": {"stores": "file", "default_store": "file",
                         "filesystem_store_datadir": c.path("glance", "images")},
        "oslo_concurrency": {"lock_path": c.path("lock")},
    })
    return d


def nova(c):
    d = c.path("etc", "nova")
    os.makedirs(d, exist_ok=True)
    os.makedirs(c.path("nova", "instances"), exist_ok=True)
    shutil.copy("/etc/nova/api-paste.ini", d)
    default = dict(_common(c, "nova"))
    del default["log_file"]  # each nova process has its own (--log-file)
    default.update({
        "transport_url": c.transport_url,
        "state_path": c.path("nova"),
        "instances_path": c.path("nova", "instances"),
        "compute_driver": "fake.FakeDriver",
        "host": c.compute_host,
        "my_ip": "127.0.0.1",
        "enabled_apis": "osapi_compute",
        "osapi_compute_workers": "1",
        "metadata_workers": "1",
        "heal_instance_info_cache_interval": "-1",
        "allow_resize_to_same_host": "true",
    })
    _ini(os.path.join(d, "nova.conf"), {
        "DEFAULT": default,
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": os.path.join(d, "api-paste.ini")},
        "api_database": {"connection": _db(c, "nova_api")},
        "database": {"connection": _db(c, "nova")},
        "keystone_authtoken": _authtoken(c),
        "placement": dict(_auth(c), valid_interfaces="public"),
        "neutron": dict(_auth(c), valid_interfaces="public"),
        "glance": {"valid_interfaces": "public", "region_name": c.region},
        "scheduler": {"workers": "1", "discover_hosts_in_cells_interval": "-1"},
        "conductor": {"workers": "1"},
        "oslo_concurrency": {"lock_path": c.path("lock")},
        "oslo_messaging_notifications": {"driver": "noop"},
        "vnc": {"enabled": "false"},
        "cinder": {"os_region_name": c.region},
        "compute": {"resource_provider_association_refresh": "3600"},
    })
    return d


def neutron(c):
    d = c.path("etc", "neutron")
    os.makedirs(os.path.join(d, "plugins", "ml2"), exist_ok=True)
    shutil.copy("/etc/neutron/api-paste.ini", d)
    _ini(os.path.join(d, "neutron.conf"), {
        "DEFAULT": dict(_common(c, "neutron"), **{
            "core_plugin": "ml2",
            "service_plugins": "router",
            "auth_strategy": "keystone",
            "state_path": c.path("neutron"),
            "api_paste_config": os.path.join(d, "api-paste.ini"),
            "transport_url": c.transport_url,
            "notify_nova_on_port_status_changes": "false",
            "notify_nova_on_port_data_changes": "false",
            "dhcp_agent_notification": "false",
            "allow_overlapping_ips": "true",
            "api_workers": "1",
            "rpc_workers": "0",
        }),
        "database": {"connection": _db(c, "neutron")},
        "keystone_authtoken": _authtoken(c),
        "oslo_concurrency": {"lock_path": c.path("lock")},
        "oslo_messaging_notifications": {"driver": "noop"},
        "nova": _auth(c),
    })
    _ini(os.path.join(d, "plugins", "ml2", "ml2_conf.ini"), {
        "ml2": {"type_drivers": "local,flat", "tenant_network_types": "local",
                "mechanism_drivers": "runnerd_bind_all", "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": "*"},
        "securitygroup": {"enable_security_group": "true"},
    })
    return d
