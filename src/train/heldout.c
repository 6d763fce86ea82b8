/* heldout.c - the held-out validation items (see heldout.h). */
#include "train/heldout.h"

#include <inttypes.h>
#include <math.h>

#include "rng.h"

tl_status tl_heldout_order(uint64_t ntr, double fraction, uint64_t seed, uint64_t *perm,
			   uint64_t *nva, tl_err *err)
{
	*nva = fraction > 0 ? (uint64_t)llround(fraction * (double)ntr) : 0;
	if (fraction > 0 && (*nva < 1 || *nva >= ntr))
		return tl_seterr(err, TL_EUSAGE,
				 "--val %g leaves no training or validation images (train has %" PRIu64
				 "; --val test validates on the test split)",
				 fraction, ntr);
	for (uint64_t i = 0; i < ntr; i++)
		perm[i] = i;
	if (!*nva)
		return TL_OK;
	uint64_t s = tl_rng_key(seed, 0x7a1, 0, 0);
	for (uint64_t i = ntr; i > 1; i--) { /* Fisher-Yates */
		uint64_t j = tl_rng_below(&s, i), t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
	return TL_OK;
}
