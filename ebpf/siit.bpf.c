// SPDX-License-Identifier: Apache-2.0
//
// nat64d eBPF fast path: stateless SIIT (RFC 7915 with RFC 6052 pool6 and the RFC 7757 EAMT) for
// the common case, at TC ingress of the IPv6-side and IPv4-side interfaces. The userspace core
// (nat64-core) stays the one complete implementation: everything this program does not translate
// exactly as the core would returns TC_ACT_OK ("punt") and the kernel routes it into the TUN as
// before. tests/fastpath_diff.rs runs packets through this program (BPF_PROG_TEST_RUN) and through
// the core and requires a punt or the core's exact bytes.
//
// RFC 7915 step          | IPv6 -> IPv4 (§5)            | IPv4 -> IPv6 (§4)
// -----------------------+------------------------------+------------------------------
// header parse, punts    | xlat6to4: ipv6 header checks | xlat4to6: ihl 5, no fragment
// §5.1/§4.1 addresses    | map6to4 (EAMT, then pool6)   | map4to6 (EAMT, then pool6)
// §4.1/§5.1 "illegal"    | special_v4, nonglobal_src6   | special_v4
// RFC 7757 §4.2.2        | punt (hairpin)               | -
// TTL / hop limit        | punt when <= 1               | punt when <= 1
// MTU (§5.1 / §4.1)      | punt: config mtu, check_mtu  | punt: DF / lowest mtu, check_mtu
// §5.3/§4.3 transport    | csum by diff; ICMP echo only | csum by diff; ICMP echo only
//
// Punted on purpose (the core handles them): IPv4 options, IPv6 extension headers, fragments,
// ICMP errors and every ICMP type but echo, TCP SYN (MSS clamping), UDP with checksum zero, TTL
// expiry, packets that do not fit, hairpinning, pool6 prefixes under the WKP with non-global IPv4
// (wkp_strict), trailing bytes after the IP payload, VLAN tags.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Counter indexes: keep in sync with src/fastpath/mod.rs `COUNTER_NAMES`.
enum counter {
	C_XLAT_6TO4 = 0,
	C_XLAT_4TO6,
	C_PUNT_NOT_IP,       // not IPv4/IPv6 over Ethernet (ARP, ND's own ethertype, VLAN)
	C_PUNT_BAD_L3,       // malformed or padded IP header, bad IPv4 header checksum
	C_PUNT_EXT_OPTS,     // IPv6 extension headers or IPv4 options
	C_PUNT_FRAGMENT,     // IPv4 fragments
	C_PUNT_PROTO,        // neither TCP, UDP nor ICMP/ICMPv6
	C_PUNT_TTL,          // hop limit / TTL would expire
	C_PUNT_NO_MAPPING,   // an address maps through neither the EAMT nor pool6
	C_PUNT_SPECIAL,      // multicast, non-global source, RFC 7915 "illegal" IPv4, WKP strict
	C_PUNT_HAIRPIN,      // RFC 7757 §4.2.2 hairpinning
	C_PUNT_TCP_SYN,      // SYN: MSS clamping stays in the core
	C_PUNT_UDP_ZERO_CSUM,
	C_PUNT_ICMP,         // ICMP other than echo request/reply, or truncated transport
	C_PUNT_TOO_BIG,      // larger than the configured MTUs (the core fragments or errors)
	C_PUNT_MTU,          // bpf_check_mtu refused the egress device
	C_DROP_HELPER,       // a helper failed after the packet was changed: dropped
	C_COUNT,
};

#define FLAG_COPY_TOS 1
#define FLAG_GEN_ID 2
#define FLAG_WKP_STRICT 4

// The one configuration entry (little-endian host fields, written by src/fastpath/maps.rs).
struct config {
	__u32 ifindex4; // egress for translated IPv4 packets (0: none, punt)
	__u32 ifindex6; // egress for translated IPv6 packets (0: none, punt)
	__u16 ipv4_mtu;
	__u16 ipv6_mtu;
	__u16 lowest_ipv6_mtu;
	__u8 flags;
	__u8 tos;
	__u8 embed_len;  // pool6 prefix used IPv4->IPv6 (the core's first), 0 = none
	__u8 embed_wkp;  // that prefix is 64:ff9b::/96
	__u8 pad[2];
	__u8 embed_prefix[16];
};

struct key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct key4 {
	__u32 prefixlen;
	__u8 addr[4];
};

// pool6 entry: the RFC 6052 prefix length and whether it is the WKP.
struct pool6_val {
	__u8 len;
	__u8 wkp;
	__u8 pad[2];
};

// EAM entry (both tries hold the same layout): prefixes in network byte order.
struct eam_val {
	__u8 v6[16];
	__u8 v4[4];
	__u8 len6;
	__u8 len4;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key6);
	__type(value, struct pool6_val);
} POOL6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key6);
	__type(value, struct eam_val);
} EAMT6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key4);
	__type(value, struct eam_val);
} EAMT4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} COUNTERS SEC(".maps");

// The IPv4 identification generator's state, per CPU (the core keeps one per worker).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} IP_ID SEC(".maps");

static __always_inline int count(__u32 c, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&COUNTERS, &c);
	if (v)
		*v += 1;
	return verdict;
}

#define PUNT(c) count((c), TC_ACT_OK)

struct ip6 {
	__u8 vtc;
	__u8 tcfl;
	__u16 flow;
	__u16 plen;
	__u8 nh;
	__u8 hl;
	__u8 src[16];
	__u8 dst[16];
};

struct ip4 {
	__u8 vihl;
	__u8 tos;
	__u16 total;
	__u16 id;
	__u16 frag;
	__u8 ttl;
	__u8 proto;
	__u16 check;
	__u8 src[4];
	__u8 dst[4];
};

#define P_ICMP 1
#define P_TCP 6
#define P_UDP 17
#define P_ICMP6 58
#define ETH_LEN 14

// RFC 7915 §4.1/§5.1 and RFC 1812 §5.3.7: 0/8, 127/8, 169.254/16, 224/4, 255.255.255.255.
static __always_inline int special_v4(const __u8 *a)
{
	return a[0] == 0 || a[0] == 127 || (a[0] == 169 && a[1] == 254) || (a[0] & 0xf0) == 0xe0 ||
	       (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

// RFC 6052 §3.1 with the IANA registry (the core's rfc6052::is_non_global_v4).
static __always_inline int nonglobal_v4(const __u8 *a)
{
	__u32 u = ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
#define WITHIN(net, len) (((u ^ (net)) >> (32 - (len))) == 0)
	return a[0] == 0 || a[0] == 10 || a[0] == 127 || WITHIN(0x64400000, 10) ||
	       WITHIN(0xa9fe0000, 16) || WITHIN(0xac100000, 12) || WITHIN(0xc0000000, 24) ||
	       WITHIN(0xc0000200, 24) || WITHIN(0xc0a80000, 16) || WITHIN(0xc6120000, 15) ||
	       WITHIN(0xc6336400, 24) || WITHIN(0xcb007100, 24) || a[0] >= 240;
#undef WITHIN
}

// The core's rfc6890::is_non_global_source6: ::, ::1, ::ffff:0:0/96, 100::/64, 2001:2::/48 and
// fe80::/9 (fe80::/10 and fec0::/10 together).
static __always_inline int nonglobal_src6(const __u8 *a)
{
	if (a[0] == 0 && a[1] == 0) {
		int z2_9 = 1, z10_14 = 1;
#pragma unroll
		for (int i = 2; i < 10; i++)
			z2_9 &= a[i] == 0;
#pragma unroll
		for (int i = 10; i < 15; i++)
			z10_14 &= a[i] == 0;
		return z2_9 && ((a[10] == 0xff && a[11] == 0xff) || (z10_14 && a[15] <= 1));
	}
	if (a[0] == 0x01 && a[1] == 0x00)
		return a[2] == 0 && a[3] == 0 && a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0;
	if (a[0] == 0x20 && a[1] == 0x01)
		return a[2] == 0 && a[3] == 2 && a[4] == 0 && a[5] == 0;
	return a[0] == 0xfe && a[1] >= 0x80;
}

// RFC 6052 §2.2: the byte index of IPv4 byte `i` behind a prefix of `len` bits (the u-octet,
// byte 8, is skipped).
static __always_inline int v4_pos(int len, int i)
{
	int p = len / 8 + i;
	return p >= 8 && len <= 64 ? p + 1 : p;
}

static __always_inline int extract6052(const __u8 *a, int len, __u8 *v4)
{
	if (len != 32 && len != 40 && len != 48 && len != 56 && len != 64 && len != 96)
		return -1;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		int p = v4_pos(len, i);
		if (p < 0 || p > 15)
			return -1;
		v4[i] = a[p];
	}
	return 0;
}

// 128-bit helpers on (hi, lo) pairs in host order.
static __always_inline void load128(const __u8 *a, __u64 *hi, __u64 *lo)
{
	__u64 h = 0, l = 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		h = (h << 8) | a[i];
		l = (l << 8) | a[8 + i];
	}
	*hi = h;
	*lo = l;
}

static __always_inline void store128(__u8 *a, __u64 hi, __u64 lo)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		a[7 - i] = hi >> (8 * i);
		a[15 - i] = lo >> (8 * i);
	}
}

static __always_inline __u32 be32_of(const __u8 *a)
{
	return ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
}

static __always_inline __u32 mask32(__u32 len)
{
	return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

// RFC 7757 §3.3.2: the IPv4 suffix is the first (32 - len4) bits after the IPv6 prefix.
static __always_inline void eam_to4(const struct eam_val *e, const __u8 *a, __u8 *out)
{
	__u64 hi, lo;
	load128(a, &hi, &lo);
	__u32 len6 = e->len6 > 128 ? 128 : e->len6, len4 = e->len4 > 32 ? 32 : e->len4;
	// a & !mask6
	if (len6 >= 64) {
		hi = 0;
		lo &= len6 == 128 ? 0 : (~0ULL >> (len6 - 64));
	} else {
		hi &= len6 == 0 ? ~0ULL : (~0ULL >> len6);
	}
	__u32 shift = (128 - len6) - (32 - len4);
	__u64 r;
	if (shift >= 128)
		r = 0;
	else if (shift >= 64)
		r = hi >> (shift - 64);
	else if (shift == 0)
		r = lo;
	else
		r = (lo >> shift) | (hi << (64 - shift));
	__u32 v = be32_of(e->v4) | ((__u32)r & ~mask32(len4));
	out[0] = v >> 24;
	out[1] = v >> 16;
	out[2] = v >> 8;
	out[3] = v;
}

// RFC 7757 §3.3.1: the IPv4 suffix placed right after the IPv6 prefix.
static __always_inline void eam_to6(const struct eam_val *e, const __u8 *a4, __u8 *out)
{
	__u32 len6 = e->len6 > 128 ? 128 : e->len6, len4 = e->len4 > 32 ? 32 : e->len4;
	__u64 s = be32_of(a4) & ~mask32(len4);
	__u32 shift = (128 - len6) - (32 - len4);
	__u64 hi, lo;
	load128(e->v6, &hi, &lo);
	if (shift >= 128) {
	} else if (shift >= 64) {
		hi |= s << (shift - 64);
	} else if (shift == 0) {
		lo |= s;
	} else {
		lo |= s << shift;
		hi |= s >> (64 - shift);
	}
	store128(out, hi, lo);
}

enum via { VIA_NONE = 0, VIA_EAM, VIA_POOL6 };

// IPv6 -> IPv4 address mapping: EAMT first, then pool6. Returns the via, or -1 to punt with
// `*why` set.
static __always_inline int map6to4(const struct config *cfg, const __u8 *a, __u8 *out, __u32 *why)
{
	struct key6 k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, a, 16);
	struct eam_val *e = bpf_map_lookup_elem(&EAMT6, &k);
	if (e) {
		eam_to4(e, a, out);
		return VIA_EAM;
	}
	struct pool6_val *p = bpf_map_lookup_elem(&POOL6, &k);
	if (!p) {
		*why = C_PUNT_NO_MAPPING;
		return -1;
	}
	if (extract6052(a, p->len, out) < 0) {
		*why = C_PUNT_NO_MAPPING;
		return -1;
	}
	if ((cfg->flags & FLAG_WKP_STRICT) && p->wkp && nonglobal_v4(out)) {
		*why = C_PUNT_SPECIAL;
		return -1;
	}
	return VIA_POOL6;
}

static __always_inline int map4to6(const struct config *cfg, const __u8 *a, __u8 *out, __u32 *why)
{
	struct key4 k = {.prefixlen = 32};
	__builtin_memcpy(k.addr, a, 4);
	struct eam_val *e = bpf_map_lookup_elem(&EAMT4, &k);
	if (e) {
		eam_to6(e, a, out);
		return VIA_EAM;
	}
	int len = cfg->embed_len;
	if (len != 32 && len != 40 && len != 48 && len != 56 && len != 64 && len != 96) {
		*why = C_PUNT_NO_MAPPING;
		return -1;
	}
	if ((cfg->flags & FLAG_WKP_STRICT) && cfg->embed_wkp && nonglobal_v4(a)) {
		*why = C_PUNT_SPECIAL;
		return -1;
	}
	// The prefix, then zeros (suffix and u-octet, §2.2), then the IPv4 bytes.
#pragma unroll
	for (int i = 0; i < 16; i++)
		out[i] = i < len / 8 ? cfg->embed_prefix[i] : 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		int p = v4_pos(len, i);
		if (p >= 0 && p < 16)
			out[p] = a[i];
	}
	return VIA_POOL6;
}

static __always_inline int load_config(struct config **cfg)
{
	__u32 zero = 0;
	*cfg = bpf_map_lookup_elem(&CONFIG, &zero);
	return *cfg ? 0 : -1;
}

// The core's ctx.ip_id(): an odd stride over the 16-bit space.
static __always_inline __u16 next_ip_id(void)
{
	__u32 zero = 0;
	__u32 *s = bpf_map_lookup_elem(&IP_ID, &zero);
	if (!s)
		return 0;
	__u16 v = (__u16)(*s + 0x9e37);
	*s = v;
	return v;
}

static __always_inline __u16 ip4_csum(const struct ip4 *h)
{
	const __u16 *w = (const __u16 *)h;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

// A GSO super-packet (TCP only; a UDP one is punted) is checked per segment: the kernel keeps
// each segment's size across bpf_skb_change_proto (it moves gso_size by the header difference),
// so a translated segment is as long as the received one: `hdr + TCP header + gso_size`.
// Returns that length, 0 for a plain packet, -1 to punt.
static __always_inline int gso_segment_len(struct __sk_buff *skb, __u32 hdr, __u8 proto,
					   const __u8 *tcp)
{
	if (!skb->gso_size)
		return 0;
	if (proto != P_TCP)
		return -1;
	return hdr + (tcp[12] >> 4) * 4 + skb->gso_size;
}

// The egress device's MTU check. A plain packet is checked as it will leave (`len_diff`); for a
// GSO packet the helper reports the device MTU, compared with the segment length.
static __always_inline int fits_egress(struct __sk_buff *skb, __u32 ifindex, __s32 len_diff,
				       int seglen)
{
	__u32 mtu_len = 0;
	int r = bpf_check_mtu(skb, ifindex, &mtu_len, seglen ? 0 : len_diff, 0);
	if (r != BPF_MTU_CHK_RET_SUCCESS)
		return 0;
	return seglen ? (__u32)seglen <= mtu_len : 1;
}

struct pseudo_len {
	__be32 len;
	__be32 proto;
};

static __always_inline int xlat6to4(struct __sk_buff *skb)
{
	struct config *cfg;
	if (load_config(&cfg) < 0)
		return TC_ACT_OK;
	struct ip6 h;
	if (bpf_skb_load_bytes(skb, ETH_LEN, &h, sizeof(h)) < 0)
		return PUNT(C_PUNT_BAD_L3);
	__u32 plen = bpf_ntohs(h.plen);
	if ((h.vtc >> 4) != 6 || skb->len != ETH_LEN + 40 + plen)
		return PUNT(C_PUNT_BAD_L3);
	if (h.nh != P_TCP && h.nh != P_UDP && h.nh != P_ICMP6) {
		if (h.nh == 0 || h.nh == 43 || h.nh == 44 || h.nh == 60)
			return PUNT(C_PUNT_EXT_OPTS);
		return PUNT(C_PUNT_PROTO);
	}
	// Multicast, unspecified destination, non-global source (the core's map_6to4 checks).
	if (h.src[0] == 0xff || h.dst[0] == 0xff || nonglobal_src6(h.src))
		return PUNT(C_PUNT_SPECIAL);
	int dst_zero = 1;
#pragma unroll
	for (int i = 0; i < 16; i++)
		dst_zero &= h.dst[i] == 0;
	if (dst_zero)
		return PUNT(C_PUNT_SPECIAL);

	__u32 l4 = ETH_LEN + 40;
	__u8 seg[20];
	__u8 echo_type = 0;
	if (h.nh == P_TCP) {
		if (plen < 20 || bpf_skb_load_bytes(skb, l4, seg, 20) < 0)
			return PUNT(C_PUNT_PROTO);
		if (seg[13] & 0x02)
			return PUNT(C_PUNT_TCP_SYN);
	} else if (h.nh == P_UDP) {
		if (plen < 8 || bpf_skb_load_bytes(skb, l4, seg, 8) < 0)
			return PUNT(C_PUNT_PROTO);
		if (seg[6] == 0 && seg[7] == 0)
			return PUNT(C_PUNT_UDP_ZERO_CSUM);
	} else {
		if (plen < 8 || bpf_skb_load_bytes(skb, l4, seg, 8) < 0)
			return PUNT(C_PUNT_ICMP);
		if (seg[0] == 128)
			echo_type = 8;
		else if (seg[0] == 129)
			echo_type = 0;
		else
			return PUNT(C_PUNT_ICMP);
	}
	if (h.hl <= 1)
		return PUNT(C_PUNT_TTL);

	__u8 src4[4], dst4[4];
	__u32 why = 0;
	int dvia = map6to4(cfg, h.dst, dst4, &why);
	if (dvia < 0)
		return PUNT(why);
	int svia = map6to4(cfg, h.src, src4, &why);
	if (svia < 0)
		return PUNT(why);
	if (special_v4(src4) || special_v4(dst4))
		return PUNT(C_PUNT_SPECIAL);
	if (dvia == VIA_POOL6) {
		struct key4 k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, dst4, 4);
		if (bpf_map_lookup_elem(&EAMT4, &k))
			return PUNT(C_PUNT_HAIRPIN);
	}
	__u32 total = 20 + plen;
	int seglen = gso_segment_len(skb, 40, h.nh, seg);
	if (seglen < 0)
		return PUNT(C_PUNT_PROTO);
	// The size each packet leaves with (a GSO segment's, else the whole packet's).
	__u32 out_len = seglen ? (__u32)seglen : total;
	if (out_len > cfg->ipv4_mtu)
		return PUNT(C_PUNT_TOO_BIG);
	if (!cfg->ifindex4)
		return PUNT(C_PUNT_MTU);
	if (!fits_egress(skb, cfg->ifindex4, -20, seglen))
		return PUNT(C_PUNT_MTU);

	// Transport checksum: the pseudo-header's addresses change (ICMPv6 -> ICMPv4 loses its
	// pseudo-header altogether, and the echo type changes).
	__s64 diff;
	int ret;
	if (h.nh == P_ICMP6) {
		struct {
			__u8 src[16];
			__u8 dst[16];
			struct pseudo_len pl;
			__u8 ty[4];
		} old = {};
		__builtin_memcpy(old.src, h.src, 16);
		__builtin_memcpy(old.dst, h.dst, 16);
		old.pl.len = bpf_htonl(plen);
		old.pl.proto = bpf_htonl(P_ICMP6);
		old.ty[0] = seg[0];
		old.ty[1] = seg[1];
		__u8 nw[4] = {echo_type, seg[1], 0, 0};
		diff = bpf_csum_diff((__be32 *)&old, sizeof(old), (__be32 *)nw, 4, 0);
		ret = bpf_l4_csum_replace(skb, l4 + 2, 0, diff, 0);
		if (ret == 0)
			ret = bpf_skb_store_bytes(skb, l4, &echo_type, 1, 0);
	} else {
		struct {
			__u8 src[16];
			__u8 dst[16];
		} old;
		struct {
			__u8 src[4];
			__u8 dst[4];
		} nw;
		__builtin_memcpy(old.src, h.src, 16);
		__builtin_memcpy(old.dst, h.dst, 16);
		__builtin_memcpy(nw.src, src4, 4);
		__builtin_memcpy(nw.dst, dst4, 4);
		diff = bpf_csum_diff((__be32 *)&old, 32, (__be32 *)&nw, 8, 0);
		__u64 fl = BPF_F_PSEUDO_HDR | (h.nh == P_UDP ? BPF_F_MARK_MANGLED_0 : 0);
		ret = bpf_l4_csum_replace(skb, l4 + (h.nh == P_TCP ? 16 : 6), 0, diff, fl);
	}
	if (ret < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);

	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);
	struct ip4 o = {};
	o.vihl = 0x45;
	o.tos = (cfg->flags & FLAG_COPY_TOS) ? (__u8)((h.vtc << 4) | (h.tcfl >> 4)) : cfg->tos;
	o.total = bpf_htons(total);
	o.id = bpf_htons((cfg->flags & FLAG_GEN_ID) ? next_ip_id() : 0);
	o.frag = bpf_htons(out_len > 1260 ? 0x4000 : 0);
	o.ttl = h.hl - 1;
	o.proto = h.nh == P_ICMP6 ? P_ICMP : h.nh;
	__builtin_memcpy(o.src, src4, 4);
	__builtin_memcpy(o.dst, dst4, 4);
	o.check = ip4_csum(&o);
	__be16 et = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, ETH_LEN, &o, sizeof(o), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 12, &et, 2, 0) < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);
	count(C_XLAT_6TO4, 0);
	return bpf_redirect_neigh(cfg->ifindex4, 0, 0, 0);
}

static __always_inline int xlat4to6(struct __sk_buff *skb)
{
	struct config *cfg;
	if (load_config(&cfg) < 0)
		return TC_ACT_OK;
	struct ip4 h;
	if (bpf_skb_load_bytes(skb, ETH_LEN, &h, sizeof(h)) < 0)
		return PUNT(C_PUNT_BAD_L3);
	if ((h.vihl >> 4) != 4)
		return PUNT(C_PUNT_BAD_L3);
	if ((h.vihl & 0xf) != 5)
		return PUNT((h.vihl & 0xf) > 5 ? C_PUNT_EXT_OPTS : C_PUNT_BAD_L3);
	__u32 total = bpf_ntohs(h.total);
	if (total < 20 || skb->len != ETH_LEN + total || ip4_csum(&h) != 0)
		return PUNT(C_PUNT_BAD_L3);
	__u16 ff = bpf_ntohs(h.frag);
	if (ff & 0x3fff)
		return PUNT(C_PUNT_FRAGMENT);
	int df = (ff & 0x4000) != 0;
	if (h.proto != P_TCP && h.proto != P_UDP && h.proto != P_ICMP)
		return PUNT(C_PUNT_PROTO);

	__u32 plen = total - 20;
	__u32 l4 = ETH_LEN + 20;
	__u8 seg[20];
	__u8 echo_type = 0;
	if (h.proto == P_TCP) {
		if (plen < 20 || bpf_skb_load_bytes(skb, l4, seg, 20) < 0)
			return PUNT(C_PUNT_PROTO);
		if (seg[13] & 0x02)
			return PUNT(C_PUNT_TCP_SYN);
	} else if (h.proto == P_UDP) {
		if (plen < 8 || bpf_skb_load_bytes(skb, l4, seg, 8) < 0)
			return PUNT(C_PUNT_PROTO);
		if (seg[6] == 0 && seg[7] == 0)
			return PUNT(C_PUNT_UDP_ZERO_CSUM);
	} else {
		if (plen < 8 || bpf_skb_load_bytes(skb, l4, seg, 8) < 0)
			return PUNT(C_PUNT_ICMP);
		if (seg[0] == 8)
			echo_type = 128;
		else if (seg[0] == 0)
			echo_type = 129;
		else
			return PUNT(C_PUNT_ICMP);
	}
	if (h.ttl <= 1)
		return PUNT(C_PUNT_TTL);
	if (special_v4(h.src) || special_v4(h.dst))
		return PUNT(C_PUNT_SPECIAL);

	__u8 src6[16], dst6[16];
	__u32 why = 0;
	if (map4to6(cfg, h.src, src6, &why) < 0)
		return PUNT(why);
	if (map4to6(cfg, h.dst, dst6, &why) < 0)
		return PUNT(why);
	int seglen = gso_segment_len(skb, 20, h.proto, seg);
	if (seglen < 0)
		return PUNT(C_PUNT_PROTO);
	__u32 out_len = seglen ? (__u32)seglen : 40 + plen;
	__u32 mtu6 = cfg->lowest_ipv6_mtu < cfg->ipv6_mtu ? cfg->lowest_ipv6_mtu : cfg->ipv6_mtu;
	if ((df && out_len > cfg->ipv6_mtu) || (!df && out_len > mtu6))
		return PUNT(C_PUNT_TOO_BIG);
	if (!cfg->ifindex6)
		return PUNT(C_PUNT_MTU);
	if (!fits_egress(skb, cfg->ifindex6, 20, seglen))
		return PUNT(C_PUNT_MTU);

	__s64 diff;
	int ret;
	if (h.proto == P_ICMP) {
		__u8 old[4] = {seg[0], seg[1], 0, 0};
		struct {
			__u8 src[16];
			__u8 dst[16];
			struct pseudo_len pl;
			__u8 ty[4];
		} nw = {};
		__builtin_memcpy(nw.src, src6, 16);
		__builtin_memcpy(nw.dst, dst6, 16);
		nw.pl.len = bpf_htonl(plen);
		nw.pl.proto = bpf_htonl(P_ICMP6);
		nw.ty[0] = echo_type;
		nw.ty[1] = seg[1];
		diff = bpf_csum_diff((__be32 *)old, 4, (__be32 *)&nw, sizeof(nw), 0);
		ret = bpf_l4_csum_replace(skb, l4 + 2, 0, diff, 0);
		if (ret == 0)
			ret = bpf_skb_store_bytes(skb, l4, &echo_type, 1, 0);
	} else {
		struct {
			__u8 src[4];
			__u8 dst[4];
		} old;
		struct {
			__u8 src[16];
			__u8 dst[16];
		} nw;
		__builtin_memcpy(old.src, h.src, 4);
		__builtin_memcpy(old.dst, h.dst, 4);
		__builtin_memcpy(nw.src, src6, 16);
		__builtin_memcpy(nw.dst, dst6, 16);
		diff = bpf_csum_diff((__be32 *)&old, 8, (__be32 *)&nw, 32, 0);
		__u64 fl = BPF_F_PSEUDO_HDR | (h.proto == P_UDP ? BPF_F_MARK_MANGLED_0 : 0);
		ret = bpf_l4_csum_replace(skb, l4 + (h.proto == P_TCP ? 16 : 6), 0, diff, fl);
	}
	if (ret < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);

	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);
	__u8 tc = (cfg->flags & FLAG_COPY_TOS) ? h.tos : cfg->tos;
	struct ip6 o = {};
	o.vtc = 0x60 | (tc >> 4);
	o.tcfl = (__u8)(tc << 4);
	o.plen = bpf_htons(plen);
	o.nh = h.proto == P_ICMP ? P_ICMP6 : h.proto;
	o.hl = h.ttl - 1;
	__builtin_memcpy(o.src, src6, 16);
	__builtin_memcpy(o.dst, dst6, 16);
	__be16 et = bpf_htons(ETH_P_IPV6);
	if (bpf_skb_store_bytes(skb, ETH_LEN, &o, sizeof(o), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 12, &et, 2, 0) < 0)
		return count(C_DROP_HELPER, TC_ACT_SHOT);
	count(C_XLAT_4TO6, 0);
	return bpf_redirect_neigh(cfg->ifindex6, 0, 0, 0);
}

SEC("classifier")
int nat64d_siit(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return xlat6to4(skb);
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return xlat4to6(skb);
	return PUNT(C_PUNT_NOT_IP);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
