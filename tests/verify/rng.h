/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A seeded xorshift64* generator: the whole verification run is a pure
 * function of --seed, so any divergence replays exactly.
 */
#ifndef PC_VERIFY_RNG_H
#define PC_VERIFY_RNG_H

#include <stdbool.h>
#include <linux/types.h>

struct rng {
	__u64 s;
};

static inline void rng_seed(struct rng *r, __u64 seed)
{
	/* splitmix64 once, so small seeds still start far from zero */
	__u64 z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	r->s = (z ^ (z >> 31)) | 1;
}

static inline __u64 rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n); n > 0. The bias of a 64-bit modulo is negligible. */
static inline __u32 rng_below(struct rng *r, __u32 n)
{
	return (__u32)((rng_next(r) >> 11) % n);
}

/* True with probability pct / 100. */
static inline bool rng_pct(struct rng *r, __u32 pct)
{
	return rng_below(r, 100) < pct;
}

#endif /* PC_VERIFY_RNG_H */
