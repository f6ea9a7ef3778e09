/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Management entries bound to interfaces (policy `interfaces:` on an
 * entry): a packet from a management address that arrives on another link
 * is a spoofed source, not management traffic.
 */
#ifndef PC_BPF_MGMT_IF_H
#define PC_BPF_MGMT_IF_H

/* Re-vouching a flow: no interface is known, bound entries hold anywhere. */
#define PC_IFINDEX_ANY	0xffffffffU

/* (slot, ifindex) -> bound management entries that match there; (slot, 0)
 * -> every bound entry of the slot (struct pc_mgmt_if_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PC_MGMT_IF_MAX);
	__type(key, struct pc_mgmt_if_key);
	__type(value, struct pc_ruleset);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_mgmt_if SEC(".maps");

/*
 * The management entries that hold on ifindex: the slot's unbound ones,
 * and the bound ones whose interfaces include it. Without PC_F_MGMT_BOUND
 * no map is read (the common case costs nothing); with it, a missing
 * (slot, 0) entry means nothing bound was written: every management entry
 * is withheld, never widened to any interface.
 */
static __always_inline void mgmt_on_iface(__u32 slot, __u32 ifindex,
					  const struct pc_settings *s,
					  struct pc_ruleset *out)
{
	struct pc_mgmt_if_key k = { .slot = slot, .ifindex = 0 };
	const struct pc_ruleset *mgmt = &s->mgmt;
	struct pc_ruleset *bound, *here;

	*out = *mgmt;
	if (!(s->flags & PC_F_MGMT_BOUND) || ifindex == PC_IFINDEX_ANY)
		return;
	bound = bpf_map_lookup_elem(&pc_mgmt_if, &k);
	if (!bound) {
		__builtin_memset(out, 0, sizeof(*out));
		return;
	}
	k.ifindex = ifindex;
	here = ifindex ? bpf_map_lookup_elem(&pc_mgmt_if, &k) : NULL;
#pragma unroll
	for (int w = 0; w < PC_RULE_WORDS; w++)
		out->bits[w] = (mgmt->bits[w] & ~bound->bits[w]) |
			       (here ? mgmt->bits[w] & here->bits[w] : 0);
}

#endif /* PC_BPF_MGMT_IF_H */
