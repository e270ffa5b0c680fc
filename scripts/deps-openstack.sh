#!/bin/sh
# Installs the test OpenStack (tests/lib/openstack.py) on Debian 12 when
# missing: keystone, glance-api, placement-api, nova-api/conductor/scheduler,
# neutron-server, the openstack CLI, uwsgi and RabbitMQ. No package may
# configure or start itself: debconf is preseeded to "no" for every database
# and endpoint question and a policy-rc.d refuses service starts while apt
# runs. It never installs nova-compute (it pulls libvirt and qemu): the tests
# run nova's compute from python3-nova with the fake virt driver.
# Prints how long the install took; exits 0 without touching apt when all is there.
set -eu

PKGS="keystone glance-api placement-api nova-api nova-conductor nova-scheduler
neutron-server python3-openstackclient rabbitmq-server uwsgi-core uwsgi-plugin-python3
sqlite3"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps-openstack: need root to install:$missing" >&2
	exit 1
fi
echo "deps-openstack: installing Debian packages:$missing"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive

# Every question the openstack-pkg-tools postinsts ask (their templates'
# names, read from an install), answered "no": no database set up, no
# endpoint registered, no RabbitMQ or keystone_authtoken configuration.
seed=$(mktemp)
cat >"$seed" <<'EOF'
keystone keystone/configure_db boolean false
keystone keystone/register-endpoint boolean false
glance-common glance/configure_db boolean false
glance-common glance/configure_rabbit boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
placement-common placement/configure_db boolean false
placement-common placement/configure_ksat boolean false
placement-api placement/configure_api-endpoint boolean false
nova-common nova/configure_db boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/configure_ksat boolean false
nova-common nova/configure_placement boolean false
nova-common nova/configure_neutron boolean false
nova-api novaapi/configure_db boolean false
nova-api nova/configure_api-endpoint boolean false
neutron-common neutron/configure_db boolean false
neutron-common neutron/configure_rabbit boolean false
neutron-common neutron/configure_ksat boolean false
neutron-common neutron/configure_nova boolean false
neutron-server neutron/configure_api-endpoint boolean false
EOF
debconf-set-selections "$seed"
rm -f "$seed"

# No daemon starts during the install (no systemd here, and none wanted):
# a temporary policy-rc.d, unless one is already there.
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	own_policy=1
fi
trap '[ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT

apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null

# the guard: a hypervisor must never have come in
for p in nova-compute libvirt-daemon qemu-system-x86; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		echo "deps-openstack: $p was pulled in; it must not be" >&2
		exit 1
	fi
done
echo "deps-openstack: installed in $(($(date +%s) - start)) s"
