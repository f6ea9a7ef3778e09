# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Namespace lab for Portcullis, to be sourced:
#
#   . tests/lab.sh
#   lab_up pc1a2b        # namespaces pc1a2bn (node), pc1a2bp (peer), pc1a2bm (mgmt)
#   ...
#   lab_down pc1a2b
#
#   peer  [pcnode] 198.51.100.2/24 2001:db8:1::2/64 (+ 203.0.113.5/32)
#     |
#   node  [pcpeer] 198.51.100.1/24 2001:db8:1::1/64
#         [pcmgmt] 192.0.2.1/24    2001:db8:2::1/64
#     |
#   mgmt  [pcnode] 192.0.2.10/24   2001:db8:2::10/64
#
# Interface names are per namespace, so the node's are fixed (pcpeer,
# pcmgmt) and policies can name them; nothing is ever created in the root
# namespace: each veth pair is made inside the node namespace with its other
# end placed straight into the peer or mgmt namespace. Deleting the
# namespaces removes the veths. Only documentation address ranges are used.

LAB_NODE_PEER_IF=pcpeer
LAB_NODE_MGMT_IF=pcmgmt
LAB_PEER_IF=pcnode
LAB_MGMT_IF=pcnode
LAB_NODE_PEER4=198.51.100.1
LAB_PEER4=198.51.100.2
LAB_NODE_PEER6=2001:db8:1::1
LAB_PEER6=2001:db8:1::2
LAB_NODE_MGMT4=192.0.2.1
LAB_MGMT4=192.0.2.10
LAB_NODE_MGMT6=2001:db8:2::1
LAB_MGMT6=2001:db8:2::10
LAB_PEER_BAD4=203.0.113.5	# second peer address, inside the "blocked" rule
export LAB_NODE_PEER_IF LAB_NODE_MGMT_IF LAB_PEER_IF LAB_MGMT_IF
export LAB_NODE_PEER4 LAB_PEER4 LAB_NODE_PEER6 LAB_PEER6
export LAB_NODE_MGMT4 LAB_MGMT4 LAB_NODE_MGMT6 LAB_MGMT6 LAB_PEER_BAD4

# A short random suffix for lab and pin names: "pc" + 4 hex digits.
lab_prefix()
{
	printf 'pc%04x' $(( (RANDOM ^ $$) & 0xffff ))
}

_lab_names()
{
	LAB_PREFIX=$1
	LAB_NODE=${1}n
	LAB_PEER=${1}p
	LAB_MGMT=${1}m
	export LAB_PREFIX LAB_NODE LAB_PEER LAB_MGMT
}

_lab_check_prefix()
{
	case $1 in
	'' | *[!a-z0-9]*)
		echo "lab: prefix '$1' must be [a-z0-9]+" >&2
		return 1 ;;
	esac
	if [ ${#1} -gt 10 ]; then
		echo "lab: prefix '$1' longer than 10 characters" >&2
		return 1
	fi
}

# Run CMD in namespace NS, loudly on failure.
_lab_in()
{
	local ns=$1
	shift
	ip netns exec "$ns" "$@" || {
		echo "lab: in $ns: $* failed" >&2
		return 1
	}
}

# DAD off before any interface exists, so new ones inherit it and IPv6
# addresses are usable at once; lo up.
_lab_ns_create()
{
	local ns=$1
	ip netns add "$ns" || return 1
	_lab_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 || return 1
	_lab_in "$ns" ip link set lo up
}

# _lab_link NS_A IF_A NS_B IF_B: veth pair, IF_A in NS_A, IF_B in NS_B.
_lab_link()
{
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || return 1
	_lab_in "$1" sysctl -qw "net.ipv6.conf.$2.accept_dad=0" || return 1
	_lab_in "$3" sysctl -qw "net.ipv6.conf.$4.accept_dad=0" || return 1
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# _lab_addrs NS IF ADDR... (with prefix length)
_lab_addrs()
{
	local ns=$1 ifname=$2 a
	shift 2
	for a in "$@"; do
		case $a in
		*:*) ip -n "$ns" addr add "$a" dev "$ifname" nodad ;;
		*) ip -n "$ns" addr add "$a" dev "$ifname" ;;
		esac || return 1
	done
}

_lab_wire()
{
	_lab_link "$LAB_NODE" "$LAB_NODE_PEER_IF" "$LAB_PEER" "$LAB_PEER_IF" &&
	_lab_link "$LAB_NODE" "$LAB_NODE_MGMT_IF" "$LAB_MGMT" "$LAB_MGMT_IF" &&
	_lab_addrs "$LAB_NODE" "$LAB_NODE_PEER_IF" \
		"$LAB_NODE_PEER4/24" "$LAB_NODE_PEER6/64" &&
	_lab_addrs "$LAB_NODE" "$LAB_NODE_MGMT_IF" \
		"$LAB_NODE_MGMT4/24" "$LAB_NODE_MGMT6/64" &&
	_lab_addrs "$LAB_PEER" "$LAB_PEER_IF" \
		"$LAB_PEER4/24" "$LAB_PEER6/64" "$LAB_PEER_BAD4/32" &&
	_lab_addrs "$LAB_MGMT" "$LAB_MGMT_IF" \
		"$LAB_MGMT4/24" "$LAB_MGMT6/64" &&
	# The node reaches the peer's 203.0.113.5 through the peer.
	ip -n "$LAB_NODE" route add "$LAB_PEER_BAD4/32" via "$LAB_PEER4"
}

# lab_up PREFIX: build the lab (any leftover of the same PREFIX is removed
# first). Returns non-zero, with the partial lab removed, on failure.
lab_up()
{
	local ns
	_lab_check_prefix "$1" || return 1
	lab_down "$1"
	_lab_names "$1"
	for ns in "$LAB_NODE" "$LAB_PEER" "$LAB_MGMT"; do
		_lab_ns_create "$ns" || { lab_down "$1"; return 1; }
	done
	_lab_wire || { lab_down "$1"; return 1; }
}

# lab_down PREFIX: delete exactly this lab's namespaces; missing ones are
# fine. Processes still inside must have been stopped by the caller.
lab_down()
{
	local ns
	_lab_check_prefix "$1" || return 1
	for ns in "${1}n" "${1}p" "${1}m"; do
		if [ -e "/run/netns/$ns" ]; then
			ip netns del "$ns" || echo "lab: cannot delete netns $ns" >&2
		fi
	done
	return 0
}

# Plain traffic commands: ip netns exec is fine.
lab_node() { ip netns exec "$LAB_NODE" "$@"; }
lab_peer() { ip netns exec "$LAB_PEER" "$@"; }
lab_mgmt() { ip netns exec "$LAB_MGMT" "$@"; }

# Anything that needs the BPF pins: ip netns exec remounts /sys and hides
# /sys/fs/bpf, so enter only the network namespace.
lab_node_bpf() { nsenter --net="/run/netns/$LAB_NODE" -- "$@"; }

lab_bpffs()
{
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

# lab_recreate_peer_link: delete the node's peer-facing veth (its other end
# goes with it) and make the pair again with the same names, addresses and
# route, as a driver reload or a re-plugged NIC would: a new ifindex under
# the old name, nothing attached to it.
lab_recreate_peer_link()
{
	ip -n "$LAB_NODE" link del "$LAB_NODE_PEER_IF" || return 1
	_lab_link "$LAB_NODE" "$LAB_NODE_PEER_IF" "$LAB_PEER" "$LAB_PEER_IF" &&
	_lab_addrs "$LAB_NODE" "$LAB_NODE_PEER_IF" \
		"$LAB_NODE_PEER4/24" "$LAB_NODE_PEER6/64" &&
	_lab_addrs "$LAB_PEER" "$LAB_PEER_IF" \
		"$LAB_PEER4/24" "$LAB_PEER6/64" "$LAB_PEER_BAD4/32" &&
	ip -n "$LAB_NODE" route add "$LAB_PEER_BAD4/32" via "$LAB_PEER4"
}
