/* heldout.h - the validation images held out of a shard's train split
 * (Keras' validation_split, seeded): tltrain trains on the rest and
 * chooses epochs by them; tleval --split val evaluates the same images
 * from the model's metadata. */
#ifndef TL_HELDOUT_H
#define TL_HELDOUT_H

#include <stdint.h>

#include "tl.h"

/* perm (ntr entries): the order of the train split's items, a seeded
 * permutation when fraction > 0; its last *nva items are held out
 * (llround(fraction * ntr)).  fraction 0: the identity, *nva = 0.
 * TL_EUSAGE when the fraction leaves no training or no validation item. */
tl_status tl_heldout_order(uint64_t ntr, double fraction, uint64_t seed, uint64_t *perm,
			   uint64_t *nva, tl_err *err);

#endif
