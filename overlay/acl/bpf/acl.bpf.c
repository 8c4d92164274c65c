// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * sub0 slot ACL: a tc (clsact, direct-action) classifier for the WireGuard interface.
 *
 * Contract (the userspace driver, overlay/acl/ebpf-acl-driver.ts, relies on every line of it):
 *  - A packet whose source and destination are both outside every prefix in acl_guard passes.
 *  - Otherwise it passes if
 *      (a) it belongs to a flow in acl_flows (either direction; see flow_key), or
 *      (b) acl_ident maps both its source and its destination to identities (sid, did), and
 *          acl_policy's entry for (sid, did) allows every protocol, or its protocol: for TCP/UDP
 *          when its destination port lies in one of the protocol's ranges, for ICMP when the
 *          entry names the family's ICMP.
 *    A packet passed by (b) records its flow, so that the return traffic passes by (a).
 *  - An identity stands for every address the node's rules treat alike (the same peers, protocols
 *    and ports, both as source and as destination), as Cilium's do: a rule between a group of
 *    10,000 slots and a group of 10 is 10,010 acl_ident entries and one acl_policy entry, where
 *    a map keyed by address pairs needs 100,000. Built with -DACL_PAIRS, the program keeps that
 *    earlier design instead (acl_rules keyed by (src, dst, proto)): the benchmark's baseline.
 *  - ICMPv6 neighbour discovery (types 133-137) always passes: it is link-scoped and an Ethernet
 *    link (the tests' veth) cannot work without it. WireGuard itself never carries it.
 *  - Everything else is dropped (TC_ACT_SHOT).
 * The same program serves ingress and egress: a tuple names its direction by its (src, dst), so
 * one lookup of the packet as it is covers both the outgoing and the incoming rules.
 *
 * Addresses are 16 bytes; IPv4 is stored v4-mapped (::ffff:a.b.c.d), so one map serves both
 * families. Ports are host byte order. Build: scripts/build-bpf.sh (clang -O2 -g -target bpf).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_RANGES 16
#define IPPROTO_ICMPV6_ 58
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define MAX_EXT_HDRS 4
/* A flow idle for longer than this no longer lets return traffic in (conntrack's spirit, shorter). */
#define FLOW_IDLE_TCP_NS (24ULL * 3600 * 1000000000ULL)
#define FLOW_IDLE_OTHER_NS (300ULL * 1000000000ULL)
/* Refresh a flow's last-seen time at most once a second: a write per packet would bounce caches. */
#define FLOW_REFRESH_NS 1000000000ULL

struct port_range {
	__u16 lo;
	__u16 hi;
};

#ifdef ACL_PAIRS
struct rule_key {
	__u8 src[16];
	__u8 dst[16];
	__u8 proto; /* IANA protocol number; 0 = any */
	__u8 pad[3];
};

struct rule_val {
	__u32 count; /* ranges in use, <= MAX_RANGES */
	struct port_range r[MAX_RANGES];
};
#else
struct ident_key {
	__u8 addr[16];
};

struct policy_key {
	__u32 sid;
	__u32 did;
};

/* What one identity may send another: one lookup decides every protocol. */
struct policy_val {
	__u8 any;  /* every protocol and port */
	__u8 icmp; /* the family's ICMP protocol number (1 or 58) when allowed; 0 otherwise */
	__u8 ntcp; /* ranges in use, <= MAX_RANGES */
	__u8 nudp;
	struct port_range tcp[MAX_RANGES];
	struct port_range udp[MAX_RANGES];
};
#endif

/*
 * One entry per flow, whichever way its packets go: the endpoints are ordered (a < b), and `dir`
 * says which way the allowed packet that opened it went, so userspace can re-check the flow
 * against the rules when one is revoked.
 */
struct flow_key {
	__u8 a[16];
	__u8 b[16];
	__u16 pa;
	__u16 pb;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u64 seen_ns;
	__u8 opened_by_b; /* 0: a -> b was the allowed packet; 1: b -> a */
	__u8 pad[7];
};

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

enum stat { STAT_UNGUARDED, STAT_RULE, STAT_FLOW, STAT_DROP, STAT_MAX };

#ifdef ACL_PAIRS
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rule_key);
	__type(value, struct rule_val);
} acl_rules SEC(".maps");
#else
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ident_key);
	__type(value, __u32);
} acl_ident SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct policy_key);
	__type(value, struct policy_val);
} acl_policy SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} acl_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u8);
} acl_guard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} acl_stats SEC(".maps");

/* 8-byte aligned: flow_key_of compares the addresses as u64 words, and the verifier rejects
 * misaligned stack access. */
struct pkt {
	__u8 src[16] __attribute__((aligned(8)));
	__u8 dst[16];
	__u16 sport; /* host order; ICMP echo: the identifier; otherwise 0 */
	__u16 dport;
	__u8 proto;
	__u8 has_ports; /* TCP/UDP with a readable header */
	__u8 icmp_type;
};

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&acl_stats, &which);
	if (c)
		*c += 1;
}

static __always_inline void map_v4(__u8 *out, __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

static __always_inline int guarded(const __u8 *addr)
{
	struct lpm_key k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&acl_guard, &k) != NULL;
}

/* Reads the L4 header at `off`: ports for TCP/UDP, echo id and type for ICMP/ICMPv6. */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		__be16 *ports = data + off;
		if ((void *)(ports + 2) > data_end)
			return -1;
		p->sport = bpf_ntohs(ports[0]);
		p->dport = bpf_ntohs(ports[1]);
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6_) {
		__u8 *h = data + off;
		if ((void *)(h + 8) > data_end)
			return -1;
		p->icmp_type = h[0];
		/* Echo request/reply (v4 8/0, v6 128/129): the identifier ties a reply to its request. */
		if (h[0] == 8 || h[0] == 0 || h[0] == 128 || h[0] == 129) {
			__u16 id = ((__u16)h[4] << 8) | h[5];
			p->sport = id;
			p->dport = id;
		}
	}
	return 0;
}

/* Fills p from the IP header at `off`. Returns -1 when the packet is IP but unreadable. */
static __always_inline int parse_v4(struct __sk_buff *skb, __u32 off, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return -1;
	map_v4(p->src, ip->saddr);
	map_v4(p->dst, ip->daddr);
	p->proto = ip->protocol;
	/* A non-first fragment has no L4 header: it matches by address and protocol only. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	return parse_l4(skb, off + ip->ihl * 4, p);
}

static __always_inline int parse_v6(struct __sk_buff *skb, __u32 off, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + off;
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	__builtin_memcpy(p->src, &ip6->saddr, 16);
	__builtin_memcpy(p->dst, &ip6->daddr, 16);
	__u8 nh = ip6->nexthdr;
	off += sizeof(*ip6);
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_FRAGMENT && nh != NEXTHDR_DEST)
			break;
		__u8 *ext = data + off;
		if ((void *)(ext + 8) > data_end)
			return -1;
		if (nh == NEXTHDR_FRAGMENT) {
			__u16 frag = ((__u16)ext[2] << 8) | ext[3];
			nh = ext[0];
			if (frag & 0xfff8) { /* non-first fragment */
				p->proto = nh;
				return 0;
			}
			off += 8;
		} else {
			nh = ext[0];
			off += ((__u32)ext[1] + 1) * 8;
		}
	}
	p->proto = nh;
	return parse_l4(skb, off, p);
}

static __always_inline int in_ranges(const struct port_range *r, __u32 n, __u16 port)
{
	for (int i = 0; i < MAX_RANGES; i++) {
		if (i >= n)
			break;
		if (port >= r[i].lo && port <= r[i].hi)
			return 1;
	}
	return 0;
}

#ifdef ACL_PAIRS
static __always_inline int rule_allows(const struct pkt *p)
{
	struct rule_key k = {};
	__builtin_memcpy(k.src, p->src, 16);
	__builtin_memcpy(k.dst, p->dst, 16);
	k.proto = p->proto;
	struct rule_val *v = bpf_map_lookup_elem(&acl_rules, &k);
	/* Port ranges bind TCP and UDP only; for ICMP the range is [0, 65535] by contract. */
	if (v && (!p->has_ports || in_ranges(v->r, v->count, p->dport)))
		return 1;
	k.proto = 0;
	return bpf_map_lookup_elem(&acl_rules, &k) != NULL;
}
#else
static __always_inline int rule_allows(const struct pkt *p)
{
	/* An address no rule names has no identity, and nothing allows it. */
	__u32 *sid = bpf_map_lookup_elem(&acl_ident, p->src);
	if (!sid)
		return 0;
	__u32 *did = bpf_map_lookup_elem(&acl_ident, p->dst);
	if (!did)
		return 0;
	struct policy_key k = { .sid = *sid, .did = *did };
	struct policy_val *v = bpf_map_lookup_elem(&acl_policy, &k);
	if (!v)
		return 0;
	if (v->any)
		return 1;
	/* A fragment without its L4 header matches by protocol alone, as with the pair map. */
	if (p->proto == IPPROTO_TCP)
		return v->ntcp > 0 && (!p->has_ports || in_ranges(v->tcp, v->ntcp, p->dport));
	if (p->proto == IPPROTO_UDP)
		return v->nudp > 0 && (!p->has_ports || in_ranges(v->udp, v->nudp, p->dport));
	return v->icmp != 0 && p->proto == v->icmp;
}
#endif

/* Orders the endpoints so both directions of a flow give the same key; returns 1 if p is b -> a. */
static __always_inline int flow_key_of(const struct pkt *p, struct flow_key *k)
{
	const __u64 *s = (const __u64 *)p->src;
	const __u64 *d = (const __u64 *)p->dst;
	int swap = s[0] > d[0] || (s[0] == d[0] && (s[1] > d[1] || (s[1] == d[1] && p->sport > p->dport)));
	if (swap) {
		__builtin_memcpy(k->a, p->dst, 16);
		__builtin_memcpy(k->b, p->src, 16);
		k->pa = p->dport;
		k->pb = p->sport;
	} else {
		__builtin_memcpy(k->a, p->src, 16);
		__builtin_memcpy(k->b, p->dst, 16);
		k->pa = p->sport;
		k->pb = p->dport;
	}
	k->proto = p->proto;
	return swap;
}

static __always_inline int classify(struct __sk_buff *skb, __u32 l3off, __u16 l3proto)
{
	struct pkt p = {};
	int err;

	if (l3proto == bpf_htons(ETH_P_IP))
		err = parse_v4(skb, l3off, &p);
	else if (l3proto == bpf_htons(ETH_P_IPV6))
		err = parse_v6(skb, l3off, &p);
	else
		return TC_ACT_OK; /* not IP: ARP on Ethernet links; nothing the ACL governs */

	if (err < 0) {
		count(STAT_DROP); /* claims to be IP and cannot be read: nothing to judge it by */
		return TC_ACT_SHOT;
	}
	if (!guarded(p.src) && !guarded(p.dst)) {
		count(STAT_UNGUARDED);
		return TC_ACT_OK;
	}
	if (p.proto == IPPROTO_ICMPV6_ && p.icmp_type >= 133 && p.icmp_type <= 137)
		return TC_ACT_OK;

	struct flow_key fk = {};
	int rev = flow_key_of(&p, &fk);
	struct flow_val *fv = bpf_map_lookup_elem(&acl_flows, &fk);
	__u64 now = bpf_ktime_get_ns();
	/* An echo request rides a flow only in the direction that opened it: from the other end, with
	 * the same identifier, it is a new request that a rule must allow (replies travel back). */
	int request = (p.proto == IPPROTO_ICMP && p.icmp_type == 8) || (p.proto == IPPROTO_ICMPV6_ && p.icmp_type == 128);
	if (fv && request && rev != fv->opened_by_b)
		fv = NULL;
	if (fv) {
		__u64 idle = p.proto == IPPROTO_TCP ? FLOW_IDLE_TCP_NS : FLOW_IDLE_OTHER_NS;
		if (now - fv->seen_ns <= idle) {
			if (now - fv->seen_ns > FLOW_REFRESH_NS)
				fv->seen_ns = now;
			count(STAT_FLOW);
			return TC_ACT_OK;
		}
	}
	if (rule_allows(&p)) {
		struct flow_val nv = { .seen_ns = now, .opened_by_b = rev };
		bpf_map_update_elem(&acl_flows, &fk, &nv, BPF_ANY);
		count(STAT_RULE);
		return TC_ACT_OK;
	}
	count(STAT_DROP);
	return TC_ACT_SHOT;
}

/* Headers the program reads: MAC + IPv6 + 4 extension-header heads (60) + 8 bytes of L4. */
#define HDR_NEED (14 + 40 + 32 + 8)

/* Makes sure the headers are in the linear part (an ingress GRO skb may hold them in frags). */
static __always_inline void pull_headers(struct __sk_buff *skb, __u32 need)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + need > data_end)
		bpf_skb_pull_data(skb, skb->len < need ? skb->len : need);
}

/* Attached to Ethernet devices (the tests' veth): packets start with a 14-byte MAC header. */
SEC("tc")
int acl_eth(struct __sk_buff *skb)
{
	pull_headers(skb, HDR_NEED);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK; /* a runt without a MAC header carries no IP */
	return classify(skb, sizeof(struct ethhdr), eth->h_proto);
}

/* Attached to L3 devices without a MAC header (WireGuard): packets start with the IP header. */
SEC("tc")
int acl_raw(struct __sk_buff *skb)
{
	pull_headers(skb, HDR_NEED - 14);
	return classify(skb, 0, skb->protocol);
}

/* The kernel knows GPL-compatible licences by these strings only; the file is dual-licensed. */
char LICENSE[] SEC("license") = "GPL v2";
